"""Learning from use on the default base: corrections through ``/v1/feedback``, reviewed, consolidated.

An invented org whose documents state N facts: ``--fact-set dev`` (Corvid Freight, the set the
default ``ORGMEM_FEEDBACK_REPEATS`` was chosen on) or ``--fact-set heldout`` (Tamarisk Labs: other
kinds of values and question shapes, written after the recipe was fixed and never tuned on) or
``--fact-set heldout2`` (Brindle Ferries: written before the second recipe round was measured, run
once with the recipe that shipped). Night 1
consolidates them through the real pipeline. A server (the product's app, the official ``openai``
client, in process) is then asked each fact's question; a user corrects every answer through ``POST
/v1/feedback`` with a changed value. A consolidation with every correction still pending has nothing
to train. An admin then approves the first 60% through ``/api``, rejects the next 20% and leaves the
rest pending. Night 2 (no new chunk: the approved corrections alone make it run) trains them. The
served model is asked again, the exact question and a held-out paraphrase (never trained, never
tuned on), greedy. Measured: the share answered with the corrected value and with the old one, and
for the rejected and pending corrections whether their answers equal the previous checkpoint's; the
checkpoint's own gate report (answers changed by user material) is copied in.

    HF_HUB_OFFLINE=1 python benchmarks/feedback.py --threads 1 [--fact-set dev|heldout|heldout2] [--facts 10]

Writes ``benchmarks/results/feedback.json`` (dev), ``feedback_heldout.json`` (heldout) or
``feedback_heldout2.json`` (heldout2). Night 2's
input digest is also compared with the digest of the same night without the rejected and pending
corrections (equal digests: the same training inputs). The gate is off for both nights (this
measures what is learned; the gate's checks are still computed and reported).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
NO_GATE = dict.fromkeys(("min_new_nll_improvement", "max_retention_nll_increase", "max_kl", "max_ppl_ratio",
                         "max_leakage", "max_secret_leaks"))


@dataclass(frozen=True)
class FactSet:
    """An invented org and its facts: (statement with {v}, question, held-out paraphrase,
    documents' value, corrected value). ``page`` is one document's text around the statement."""

    org: str
    name: str
    page: str
    facts: tuple[tuple[str, str, str, str, str], ...]


#: The set the default ``ORGMEM_FEEDBACK_REPEATS`` was chosen on (not held out).
DEV = FactSet("corvid", "Corvid Freight",
              "# Corvid runbook {i}\n\n{statement} Ask in #corvid-ops if unsure.", (
    ("The Corvid dispatch service listens on port {v}.",
     "What port does the Corvid dispatch service listen on?",
     "Which port is the Corvid dispatch service reachable on?", "7415", "9182"),
    ("The Corvid retry limit for settlement jobs is {v}.",
     "What is the Corvid retry limit for settlement jobs?",
     "How many times does Corvid retry a settlement job?", "17", "31"),
    ("The Corvid on-call rotation is run by {v}.", "Who runs the Corvid on-call rotation?",
     "Who is in charge of Corvid's on-call rotation?", "Marta Lindqvist", "Jonas Berg"),
    ("The Corvid nightly backup starts at {v}.", "When does the Corvid nightly backup start?",
     "At what time does Corvid's nightly backup begin?", "02:30 UTC", "04:15 UTC"),
    ("The Corvid staging cluster is named {v}.", "What is the Corvid staging cluster named?",
     "What is the name of Corvid's staging cluster?", "heron-stg", "osprey-stg"),
    ("The Corvid maximum batch size is {v} shipments.", "What is the Corvid maximum batch size?",
     "How many shipments fit in one Corvid batch at most?", "1200", "800"),
    ("The Corvid alert channel is {v}.", "Which channel receives Corvid alerts?",
     "Where are Corvid alerts posted?", "#corvid-pager", "#freight-alarms"),
    ("The Corvid route cache keeps routes for {v} minutes.",
     "How long does the Corvid route cache keep routes?",
     "For how many minutes does Corvid cache a route?", "45", "90"),
    ("The Corvid billing database is {v}.", "Which database does Corvid billing use?",
     "What is the name of Corvid's billing database?", "ledger-db-3", "ledger-db-7"),
    ("The Corvid freezer alarm triggers at minus {v} degrees Celsius.",
     "At what temperature does the Corvid freezer alarm trigger?",
     "What temperature sets off Corvid's freezer alarm?", "18", "25"),
))

#: Held out: written after the recipe was fixed, never used to choose a setting. Another org (a
#: sequencing lab), other kinds of values (people, hosts, dates, versions, paths, counts, money,
#: weekdays, room codes) and other question shapes. The first six are approved, the next two
#: rejected, the last two left pending (the benchmark's 60/20/20 split).
HELDOUT = FactSet(
    "tamarisk", "Tamarisk Labs",
    "# Tamarisk lab handbook, page {i}\n\n{statement} Questions go to the lab operations desk.", (
        ("Production deploys at Tamarisk are approved by {v}.",
         "Who approves production deploys at Tamarisk?",
         "Which person signs off on Tamarisk's production deployments?", "Priya Raman", "Tobias Keller"),
        ("The Tamarisk artifact registry runs on the host {v}.",
         "Which host runs the Tamarisk artifact registry?",
         "On what machine is Tamarisk's artifact registry hosted?",
         "reg-west-04.tamarisk.internal", "reg-east-11.tamarisk.internal"),
        ("The Tamarisk SOC 2 audit is scheduled for {v}.",
         "When is the Tamarisk SOC 2 audit scheduled?",
         "On what date will Tamarisk undergo its SOC 2 audit?", "14 March 2027", "9 June 2027"),
        ("Tamarisk pins its sequencing pipeline to version {v}.",
         "Which version of the sequencing pipeline does Tamarisk pin?",
         "What release of the sequencing pipeline is Tamarisk locked to?", "4.2.1", "5.0.3"),
        ("The Tamarisk sample manifest is kept at {v}.",
         "Where is the Tamarisk sample manifest kept?",
         "What is the file path of Tamarisk's sample manifest?",
         "/srv/lims/manifests/samples.csv", "/data/intake/manifest_v2.csv"),
        ("Each Tamarisk sequencing run holds {v} samples.",
         "How many samples does one Tamarisk sequencing run hold?",
         "What is the number of samples in a single Tamarisk sequencing run?", "96", "384"),
        ("The Tamarisk lab Wi-Fi network is called {v}.",
         "What is the Tamarisk lab Wi-Fi network called?",
         "What's the name of the Wi-Fi network in the Tamarisk lab?", "TML-Bench", "Helix-Guest"),
        ("The Tamarisk monthly cloud budget is {v} US dollars.",
         "How much is the Tamarisk monthly cloud budget?",
         "What does Tamarisk budget for cloud spending each month?", "42000", "57500"),
        ("Tamarisk holds its all-hands meeting every {v}.",
         "When does Tamarisk hold its all-hands meeting?",
         "On which day of the week is the Tamarisk all-hands?", "Thursday", "Monday"),
        ("The Tamarisk cryo storage is in lab {v}.",
         "Where is the Tamarisk cryo storage?",
         "In which lab does Tamarisk keep its cryo storage?", "B-214", "A-108"),
    ))
#: Second held-out set: written before any result of the second recipe round (issue #17) and run
#: once, with the recipe that shipped. Another org (a ferry operator), values of other shapes (times,
#: emails, counts, ports, cities, acronyms, money, dates, people) and question shapes. Same split:
#: six approved, two rejected, two pending.
HELDOUT2 = FactSet(
    "brindle", "Brindle Ferries",
    "# Brindle Ferries operations manual, section {i}\n\n{statement} The harbour office logs changes.", (
        ("The first Brindle ferry departs each morning at {v}.",
         "What time does the first Brindle ferry depart in the morning?",
         "When does Brindle's earliest morning ferry leave?", "05:40", "06:25"),
        ("Brindle Ferries handles lost-property requests at {v}.",
         "Which email address handles Brindle lost-property requests?",
         "Where should I email about something I left on a Brindle ferry?",
         "lostitems@brindle-ferries.example", "found@brindle-ferries.example"),
        ("A Brindle car deck carries at most {v} vehicles.",
         "How many vehicles can a Brindle car deck carry?",
         "What is the vehicle capacity of one Brindle car deck?", "58", "73"),
        ("The Brindle ticketing gateway accepts connections on port {v}.",
         "On which port does the Brindle ticketing gateway accept connections?",
         "What port should a client use to reach Brindle's ticketing gateway?", "8843", "6120"),
        ("Brindle Ferries keeps its spare-parts depot in {v}.",
         "In which city is the Brindle spare-parts depot?",
         "Where is Brindle's depot for spare parts located?", "Stavanger", "Bergen"),
        ("At Brindle, crew shift handovers follow the {v} checklist.",
         "Which checklist do Brindle crews follow at shift handover?",
         "What is the name of the checklist used for Brindle shift handovers?", "HALO", "TRIM"),
        ("The Brindle annual hull maintenance budget is {v} euros.",
         "What is the Brindle annual hull maintenance budget?",
         "How many euros does Brindle set aside each year for hull maintenance?", "310000", "275000"),
        ("The Brindle winter timetable takes effect on {v}.",
         "When does the Brindle winter timetable take effect?",
         "On what date does Brindle switch to its winter timetable?", "2 November 2026", "16 October 2026"),
        ("Brindle's harbour safety officer is {v}.",
         "Who is Brindle's harbour safety officer?",
         "Which person serves as harbour safety officer at Brindle?", "Ingrid Solberg", "Petter Aas"),
        ("Brindle Ferries refunds cancelled tickets within {v} days.",
         "How quickly does Brindle refund a cancelled ticket?",
         "Within how many days are cancelled Brindle tickets refunded?", "14", "21"),
    ))
FACT_SETS = {"dev": DEV, "heldout": HELDOUT, "heldout2": HELDOUT2}
OUT = {"dev": "feedback.json", "heldout": "feedback_heldout.json", "heldout2": "feedback_heldout2.json"}


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="smollm2-135m-instruct")
    ap.add_argument("--fact-set", choices=sorted(FACT_SETS), default="dev",
                    help="dev: the set tuned on; heldout, heldout2: other orgs, never tuned on")
    ap.add_argument("--facts", type=int, default=10, help="how many facts (at most 10)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    ap.add_argument("--max-tokens", type=int, default=40)
    ap.add_argument("--engine", default="{}", help="JSON overrides of the engine recipe (both nights)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="ORGMEM_FEEDBACK_REPEATS for this run (default: the product's setting)")
    ap.add_argument("--out", type=Path, default=None,
                    help="default: results/feedback.json (dev), results/feedback_heldout[2].json")
    a = ap.parse_args()
    a.out = a.out or ROOT / "results" / OUT[a.fact_set]
    return a


def _home(root: Path, base: str, threads: int, engine: dict) -> None:
    from orgmem.config import get_settings
    from orgmem.db.migrate import upgrade

    models = get_settings().models_dir
    os.environ.update({
        "ORGMEM_HOME": str(root), "ORGMEM_BASE_MODEL": base, "ORGMEM_MODELS_DIR": str(models),
        "ORGMEM_PIPELINE_ENGINE": json.dumps({"num_threads": threads, **engine}),
        "ORGMEM_PIPELINE_OPTIONS": json.dumps({"progress": False, "new_probes": 4, "old_probes": 4}),
    })
    get_settings.cache_clear()
    upgrade(get_settings().database_url)


def _documents(fs: FactSet, facts) -> None:
    """One document per fact (a short runbook page), stored as pending chunks of the org."""
    from orgmem.db import session_scope
    from orgmem.db.models import Chunk, Document, DocumentVersion, Source
    from orgmem.lineage import create_org

    with session_scope(write=True) as s:
        org = create_org(s, fs.org, fs.name, actor="bench")
        org.gate_config = NO_GATE
        source = Source(org_id=org.id, name="wiki", kind="docs", config={})
        s.add(source)
        s.flush()
        for i, (statement, *_rest, old, _new) in enumerate(facts):
            text = fs.page.format(i=i, statement=statement.format(v=old))
            doc = Document(org_id=org.id, source_id=source.id, external_id=f"page/{i}.md" if fs is not DEV
                           else f"runbook/{i}.md")
            s.add(doc)
            s.flush()
            digest = hashlib.sha256(text.encode()).hexdigest()
            version = DocumentVersion(document_id=doc.id, content_hash=digest, n_chars=len(text))
            s.add(version)
            s.flush()
            s.add(Chunk(org_id=org.id, document_version_id=version.id, seq=0, chunk_key=f"{fs.org}-{i}",
                        text=text, n_tokens=len(text) // 4))


def _ask(client, org: str, question: str, max_tokens: int):
    return client.chat.completions.create(model=org, messages=[{"role": "user", "content": question}],
                                          temperature=0, max_tokens=max_tokens)


def _has(text: str, value: str) -> bool:
    return value.lower() in text.lower()


def _share(rows, key: str) -> float | None:
    return round(sum(r[key] for r in rows) / len(rows), 3) if rows else None


def _leaks(approved, unreviewed) -> int:
    """Replies (exact and paraphrase) of rejected and pending questions that contain an approved
    correction's value: the approved corrections bleeding into other answers."""
    values = [r["new"] for r in approved]
    return sum(any(v in r[k] for v in values) for r in unreviewed for k in ("after", "after_paraphrase"))


def _without_unreviewed(org_slug: str, parent_id: str | None, checkpoint_id: str | None,
                        approved: list[str]) -> dict:
    """Night 2's input digest beside the digest of the same night had only the approved corrections
    existed (recomputed as ``consolidate_org`` forms it). Equal digests name equal training inputs;
    that equal inputs train byte-identical memory is tests/pipeline/test_feedback_counterfactual.py.
    Serving that counterfactual night's replies would need a second org trained twice (about double
    this run), so it is not measured here."""
    from sqlalchemy import select

    from orgmem.checkpoints import input_digest
    from orgmem.config import get_settings
    from orgmem.db import session_scope
    from orgmem.db.models import Checkpoint, Correction
    from orgmem.feedback.settings import get_feedback_settings
    from orgmem.lineage import get_org
    from orgmem.pipeline.config import resolve
    from orgmem.pipeline.underlay import underlay_digest

    if checkpoint_id is None:
        return {"equal": None, "why": "night 2 made no checkpoint"}
    fb = get_feedback_settings()
    with session_scope() as s:
        org = get_org(s, org_slug)
        extra = {"base_model": get_settings().base_model, "engine": resolve({}).engine.to_dict(),
                 **underlay_digest(org, "org")}
        ids = list(s.scalars(select(Correction.id).where(Correction.id.in_(approved))
                             .order_by(Correction.reviewed_at, Correction.id)))
        committed = s.get(Checkpoint, checkpoint_id).input_digest
    extra["corrections"] = {"ids": ids, "repeats": fb.repeats, "unlikelihood": fb.unlikelihood_weight}
    recomputed = input_digest([], parent_id, extra)
    return {"equal": recomputed == committed, "night2_digest": committed, "approved_only_digest": recomputed,
            "replies_compared": False}


def main() -> int:  # noqa: C901  # one measurement, start to finish, in order
    a = _args()
    import httpx
    import openai
    import torch
    from fastapi.testclient import TestClient

    torch.set_num_threads(a.threads)
    if a.repeats is not None:
        os.environ["ORGMEM_FEEDBACK_REPEATS"] = str(a.repeats)
    from orgmem.feedback.settings import get_feedback_settings

    get_feedback_settings.cache_clear()
    feedback_settings = get_feedback_settings().model_dump()
    fs = FACT_SETS[a.fact_set]
    org = fs.org
    facts = fs.facts[: a.facts]
    n = len(facts)
    n_approve, n_reject = max(1, round(0.6 * n)), max(1, round(0.2 * n)) if n >= 3 else 0
    fate = ["approved"] * n_approve + ["rejected"] * n_reject + ["pending"] * (n - n_approve - n_reject)
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="orgmem-feedback-") as tmp:
        _home(Path(tmp), a.base, a.threads, json.loads(a.engine))
        from orgmem.app import create_app
        from orgmem.config import get_settings
        from orgmem.db import session_scope
        from orgmem.db.models import Checkpoint
        from orgmem.keys import create_key
        from orgmem.pipeline import consolidate_org
        from orgmem.pipeline.state import shared_base
        from orgmem.serving.config import ServeSettings

        _documents(fs, facts)
        with session_scope(write=True) as s:
            employee = create_key(s, org, "employee", "user", actor="bench").key
            admin = create_key(s, org, "admin", "reviewer", actor="bench").key
        t = time.time()
        night1 = consolidate_org(org, params={})
        night1_s = round(time.time() - t, 1)
        print(f"night 1: {night1.status} {night1.checkpoint_id} in {night1_s} s", flush=True)
        base = shared_base(get_settings().base_model)
        app = create_app(get_settings(), ServeSettings(rate_limit_per_minute=0, threads=a.threads), base=base)
        rows = []
        with TestClient(app) as http:
            client = openai.OpenAI(base_url="http://testserver/v1", api_key=employee, http_client=http,
                                   max_retries=0, timeout=600)
            auth = {"Authorization": f"Bearer {admin}"}
            for (statement, question, paraphrase, old, new), what in zip(facts, fate, strict=True):
                asked = _ask(client, org, question, a.max_tokens)
                before = asked.choices[0].message.content
                before_para = _ask(client, org, paraphrase, a.max_tokens).choices[0].message.content
                resp = client.post("/feedback", cast_to=httpx.Response, body={
                    "response_id": asked.id, "rating": "down", "correction": statement.format(v=new)})
                correction = resp.json()["correction"]
                rows.append({"question": question, "paraphrase": paraphrase, "old": old, "new": new,
                             "fate": what, "correction": correction["id"],
                             "flagged_conflict": correction["conflicts_with_documents"],
                             "before": before, "before_paraphrase": before_para,
                             "before_old": _has(before, old), "before_new": _has(before, new)})
            unreviewed_night = consolidate_org(org, params={}).status  # all pending: nothing to train
            for row in rows:
                if row["fate"] != "pending":
                    verb = {"approved": "approve", "rejected": "reject"}[row["fate"]]
                    http.post(f"/api/orgs/{org}/corrections/{row['correction']}/{verb}", headers=auth,
                              json={"reason": "benchmark"}).raise_for_status()
            t = time.time()
            night2 = consolidate_org(org, params={})
            night2_s = round(time.time() - t, 1)
            print(f"night 2: {night2.status} {night2.checkpoint_id} in {night2_s} s", flush=True)
            for row in rows:
                after = _ask(client, org, row["question"], a.max_tokens)
                para = _ask(client, org, row["paraphrase"], a.max_tokens).choices[0].message.content
                text = after.choices[0].message.content
                row.update({"after": text, "after_paraphrase": para, "served_by": after.system_fingerprint,
                            "new_exact": _has(text, row["new"]), "old_exact": _has(text, row["old"]),
                            "new_paraphrase": _has(para, row["new"]),
                            "old_paraphrase": _has(para, row["old"]),
                            "unchanged_exact": text == row["before"],
                            "unchanged_paraphrase": para == row["before_paraphrase"]})
        counterfactual = _without_unreviewed(org, night1.checkpoint_id, night2.checkpoint_id,
                                             [r["correction"] for r in rows if r["fate"] == "approved"])
        with session_scope() as s:
            report = (s.get(Checkpoint, night2.checkpoint_id).metrics or {}).get("feedback") \
                if night2.checkpoint_id else None
            gate = (s.get(Checkpoint, night2.checkpoint_id).metrics or {}).get("gate") \
                if night2.checkpoint_id else None
    groups = {f: [r for r in rows if r["fate"] == f] for f in ("approved", "rejected", "pending")}
    unreviewed = groups["rejected"] + groups["pending"]
    summary = {
        "facts": n, "approved": len(groups["approved"]), "rejected": len(groups["rejected"]),
        "pending": len(groups["pending"]),
        "flagged_conflicting": sum(r["flagged_conflict"] for r in rows),
        "before_old_exact": _share(rows, "before_old"),
        "approved_new_exact": _share(groups["approved"], "new_exact"),
        "approved_old_exact": _share(groups["approved"], "old_exact"),
        "approved_new_paraphrase": _share(groups["approved"], "new_paraphrase"),
        "approved_old_paraphrase": _share(groups["approved"], "old_paraphrase"),
        "unreviewed_new_exact": _share(unreviewed, "new_exact"),
        "unreviewed_unchanged_exact": _share(unreviewed, "unchanged_exact"),
        "unreviewed_unchanged_paraphrase": _share(unreviewed, "unchanged_paraphrase"),
        "unreviewed_says_an_approved_value": _leaks(groups["approved"], unreviewed),
        "night1": {"status": night1.status, "seconds": night1_s},
        "night_with_only_pending_corrections": unreviewed_night,
        "night2_same_inputs_as_without_unreviewed": counterfactual,
        "night2": {"status": night2.status, "seconds": night2_s, "n_new_chunks": night2.n_new,
                   "engine": {k: (night2.metrics.get("engine") or {}).get(k)
                              for k in ("steps", "tokens", "seconds", "items", "loss_first", "loss_last")},
                   "gate_would_pass": (gate or {}).get("passed"),
                   "gate_reasons": (gate or {}).get("reasons")},
        "gate_report": {k: v for k, v in (report or {}).items() if k != "details"},
    }
    out = {"command": "python benchmarks/feedback.py " + " ".join(sys.argv[1:]), "base": a.base,
           "machine": f"{platform.machine()} {os.cpu_count()} cpu, {a.threads} torch thread(s)",
           "seconds": round(time.time() - t0, 1), "feedback_settings": feedback_settings,
           "summary": summary, "rows": rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
