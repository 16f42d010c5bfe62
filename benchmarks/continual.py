"""Continual benchmark: night after night on a growing invented org, through the real pipeline.

For each replay policy: a fresh orgmem home (SQLite, folder store), an org whose four sources (a
git repository, a docs folder, a Slack export, an RSS feed served over HTTP on 127.0.0.1) are
written night by night by ``benchmarks/org_generator.py``. Each night runs what the scheduler
runs on a worker: a sync job of every source chained to a consolidation job (the product's replay
policy, gate and promotion), in this process (``orgmem.ops.jobs.run_inline``). After each night
the served checkpoint is asked every probe true that night, and measured:

- retention matrix: question and cloze recall of each night's facts after every later night, and
  of the night-1 facts answered after night 1, the share still answered;
- updates answered with the new value, stale answers (the replaced value);
- generic drift (perplexity ratio, KL, replies changed of 20, leakage);
- seconds, training tokens, new and replayed chunk tokens, checkpoint bytes per night.
At the last night the bare base (closed book) and BM25 top-3 retrieval over the live chunks are
asked the same questions with the same answer check: what a user would get without orgmem.

    python benchmarks/continual.py                                  # 10 nights x 30 facts, budget
    python benchmarks/continual.py --policies budget,full,none --nights 6 --facts-per-night 10 \
        --updates-per-night 2 --out benchmarks/results/continual
    python benchmarks/continual.py --base tiny-random --quick       # a smoke run (seconds)
    python benchmarks/continual.py --render benchmarks/results/continual/continual.json --docs

Writes ``<out>/continual.json`` (after every night, so an interrupted run keeps what it measured),
``<out>/continual.md`` and ``<out>/retention.png``; ``--docs`` also replaces the continual section
of ``docs/benchmarks.md`` (between its ``continual:begin/end`` markers) with the table.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
ORG = "continual"
DOCS_BEGIN, DOCS_END = "<!-- continual:begin -->", "<!-- continual:end -->"


@dataclass
class ContinualConfig:
    base: str = "smollm2-135m-instruct"
    nights: int = 10
    facts_per_night: int = 30
    updates_per_night: int = 6
    deletes_per_night: int = 1
    seed: int = 0
    policies: list[str] = field(default_factory=lambda: ["budget"])
    threads: int = 2
    engine: dict = field(default_factory=dict)
    pipeline: dict = field(default_factory=dict)
    generic_replies: bool = True
    baselines: bool = True
    out: Path = ROOT / "results" / "continual"
    work: Path | None = None
    quick: bool = False


def parse_args(argv: list[str] | None = None) -> tuple[ContinualConfig, argparse.Namespace]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default=ContinualConfig.base)
    ap.add_argument("--nights", type=int, default=ContinualConfig.nights)
    ap.add_argument("--facts-per-night", type=int, default=ContinualConfig.facts_per_night)
    ap.add_argument("--updates-per-night", type=int, default=ContinualConfig.updates_per_night)
    ap.add_argument("--deletes-per-night", type=int, default=ContinualConfig.deletes_per_night)
    ap.add_argument("--seed", type=int, default=0, help="generator and engine seed")
    ap.add_argument("--policies", default="budget", help="comma-separated replay policies to compare")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the machine is shared)")
    ap.add_argument("--engine", default="{}", help="JSON ConsolidationConfig overrides")
    ap.add_argument("--pipeline", default="{}", help="JSON PipelineConfig overrides (besides the policy)")
    ap.add_argument("--no-generic-replies", action="store_true", help="skip generated generic replies")
    ap.add_argument("--no-baselines", action="store_true", help="skip closed-book and BM25 rows")
    ap.add_argument("--out", type=Path, default=ContinualConfig.out)
    ap.add_argument("--work", type=Path, default=None, help="keep the org homes here (default: temp)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes and budgets: a smoke run")
    ap.add_argument("--render", type=Path, default=None, help="only rebuild table and plot from this JSON")
    ap.add_argument("--docs", action="store_true", help="also write the table into docs/benchmarks.md")
    a = ap.parse_args(argv)
    from benchmarks.orggen.generator import night_sizes
    from orgmem.pipeline.config import REPLAY_POLICIES

    policies = [p.strip() for p in a.policies.split(",") if p.strip()]
    bad = [p for p in policies if p not in REPLAY_POLICIES]
    if bad:
        ap.error(f"unknown replay polic(ies) {bad}; choose from {list(REPLAY_POLICIES)}")
    cfg = ContinualConfig(
        base=a.base,
        **night_sizes(a),
        seed=a.seed,
        policies=policies,
        threads=a.threads,
        engine=json.loads(a.engine),
        pipeline=json.loads(a.pipeline),
        generic_replies=not a.no_generic_replies,
        baselines=not a.no_baselines,
        out=a.out,
        work=a.work,
        quick=a.quick,
    )
    if a.quick:
        cfg.nights, cfg.facts_per_night, cfg.updates_per_night = min(cfg.nights, 3), 4, 1
        cfg.engine = {"epochs": 1.0, "max_steps": 3, "tokens_per_step": 256, "max_seq_len": 128, **cfg.engine}
        cfg.pipeline = {"new_probes": 4, "old_probes": 4, "cloze_max_new_tokens": 4, **cfg.pipeline}
    return cfg, a


# -- the org's home and sources -------------------------------------------------------------------
@contextlib.contextmanager
def org_home(root: Path, cfg: ContinualConfig, policy: str) -> Iterator[Path]:
    """A fresh orgmem home for one policy run: env set, settings caches cleared, database migrated."""
    from orgmem.config import get_settings
    from orgmem.db import dispose_engines
    from orgmem.db.migrate import upgrade
    from orgmem.jobs.settings import get_job_settings

    home = root / policy / "home"
    models = get_settings().models_dir  # the converted base stays where the caller's home keeps it
    pipeline = {"progress": False, **cfg.pipeline, "replay_policy": policy}
    env = {
        "ORGMEM_HOME": str(home),
        "ORGMEM_BASE_MODEL": cfg.base,
        "ORGMEM_MODELS_DIR": str(models),
        "ORGMEM_ALLOWED_NETWORKS": "127.0.0.0/8",  # the feed is served on loopback
        "ORGMEM_PIPELINE_ENGINE": json.dumps({"num_threads": cfg.threads, "seed": cfg.seed, **cfg.engine}),
        "ORGMEM_PIPELINE_OPTIONS": json.dumps(pipeline),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    get_job_settings.cache_clear()
    try:
        home.mkdir(parents=True, exist_ok=True)
        upgrade(get_settings().database_url)
        yield root / policy / "sources"
    finally:
        dispose_engines()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()
        get_job_settings.cache_clear()


@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """``folder`` over HTTP on 127.0.0.1 (the RSS connector reads feeds over HTTP only)."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # noqa: D102 - no access log on stderr
        return None


def register_sources(sources: Path, feed_url: str) -> None:
    """The four sources, registered as ``orgmem source add`` does (checked at add time)."""
    from orgmem.db.session import session_scope
    from orgmem.ingest import add_source
    from orgmem.lineage import create_org

    with session_scope(write=True) as s:
        org = create_org(s, ORG, "Continual benchmark org", actor="benchmark")
        add_source(s, org, "git", "code", {"path": str(sources / "repo")}, actor="benchmark")
        add_source(s, org, "docs", "handbook", {"path": str(sources / "docs")}, actor="benchmark")
        add_source(s, org, "slack", "chat", {"zip": str(sources / "slack" / "export.zip")}, actor="benchmark")
        add_source(s, org, "rss", "news", {"url": f"{feed_url}/feed/feed.xml"}, actor="benchmark")


# -- one night ------------------------------------------------------------------------------------
def run_night() -> tuple[dict, dict | None]:
    """What the scheduler runs: sync every source, chained to the consolidation (both inline)."""
    from orgmem.db.session import session_scope
    from orgmem.jobs import get_job, job_dict
    from orgmem.ops.jobs import create_sync, run_inline

    sync_id = create_sync(ORG, actor="benchmark", then_consolidate=True)
    run_inline(sync_id)
    with session_scope() as s:
        sync = job_dict(s, get_job(s, sync_id), events=True)
        nexts = [e["data"]["next_job"] for e in sync["events"] if (e.get("data") or {}).get("next_job")]
        consolidation = job_dict(s, get_job(s, nexts[0]), events=True) if nexts else None
    return sync, consolidation


def input_tokens(checkpoint_id: str | None) -> dict[str, int]:
    """Tokens of the chunks a checkpoint was trained on, by role (new, replay)."""
    from sqlalchemy import func, select

    from orgmem.db.models import CheckpointInput, Chunk
    from orgmem.db.session import session_scope

    if checkpoint_id is None:
        return {}
    with session_scope() as s:
        rows = s.execute(
            select(CheckpointInput.role, func.sum(Chunk.n_tokens), func.count())
            .join(Chunk, Chunk.id == CheckpointInput.chunk_id)
            .where(CheckpointInput.checkpoint_id == checkpoint_id)
            .group_by(CheckpointInput.role)
        ).all()
    return {
        **{f"{role}_tokens": int(t or 0) for role, t, _ in rows},
        **{f"{role}_chunks": int(n) for role, _, n in rows},
    }


def served_memory() -> tuple[str | None, bytes | None]:
    from orgmem.db.session import session_scope
    from orgmem.lineage import get_org
    from orgmem.pipeline.state import load_parent
    from orgmem.store import open_store

    with session_scope() as s:
        served = get_org(s, ORG).served_checkpoint_id
        return served, (load_parent(s, open_store(), served).memory if served else None)


def current_probes(gen, night: int):
    """Probes true after ``night``: the latest statement of each fact, retired facts left out."""
    from orgmem.eval.probes import active_probes, probe_from_dict

    retired = {fact for fact, at in gen.retired(night).items() if at <= night}
    probes = [probe_from_dict(p, f"generated probe {i}") for i, p in enumerate(gen.probes(night))]
    return [p for p in active_probes(probes, night) if p.fact not in retired], probes


def evaluate_served(base, probes, all_probes, night: int, cfg: ContinualConfig):
    from orgmem.eval import EvalConfig, evaluate
    from orgmem.pipeline.evaluation import base_reference, memory_on

    _, memory = served_memory()
    reference = base_reference(base) if cfg.generic_replies else None
    with memory_on(base, memory) as model:
        report = evaluate(
            model, base.tokenizer, probes, reference=reference, night=night, config=EvalConfig(batch_size=16)
        )
    return report


def retention_cells(report) -> dict[str, dict]:
    """Question and cloze recall of the probes of each night (the night a value became true)."""
    cells: dict[str, dict] = {}
    for night in sorted({r.night for r in report.probes}):
        rs = [r for r in report.probes if r.night == night]
        asked = [r for r in rs if r.question_hit is not None]
        cells[str(night)] = {
            "n": len(rs),
            "question": sum(bool(r.question_hit) for r in asked) / len(asked) if asked else None,
            "cloze": sum(r.cloze_hit for r in rs) / len(rs),
        }
    return cells


def night_row(night: int, summary, sync: dict, consolidation: dict | None, report, seconds: float) -> dict:
    result = (consolidation or {}).get("result") or {}
    metrics = result.get("metrics") or {}
    engine = metrics.get("engine") or {}
    probes = report.probes
    asked = [r for r in probes if r.question_hit is not None]
    updates = [r for r in asked if r.key in summary["update_keys"]]  # every current changed value
    tonight = [r for r in updates if r.night == night]
    generic = report.generic.to_dict() if report.generic else {}
    return {
        "night": night,
        "new_facts": len(summary["new_ids"]),
        "updated_facts": len(summary["updated_ids"]),
        "deleted_paths": summary["deleted_paths"],
        "sync_status": sync["status"],
        "failed_sources": (sync.get("result") or {}).get("failed_sources"),
        "consolidation_status": (consolidation or {}).get("status"),
        "gate_status": result.get("status"),
        "checkpoint_id": result.get("checkpoint_id"),
        "gate": {c["name"]: c.get("passed") for c in (result.get("gate") or {}).get("checks", [])},
        "n_probes": len(probes),
        "question_recall": sum(bool(r.question_hit) for r in asked) / len(asked) if asked else None,
        "cloze_recall": sum(r.cloze_hit for r in probes) / len(probes) if probes else None,
        "update_accuracy": (sum(bool(r.question_hit) for r in updates) / len(updates)) if updates else None,
        "update_stale": (sum(bool(r.question_stale) for r in updates) / len(updates)) if updates else None,
        "n_updates_asked": len(updates),
        "tonight_update_accuracy": (sum(bool(r.question_hit) for r in tonight) / len(tonight))
        if tonight
        else None,
        "ppl_ratio": generic.get("ppl_ratio"),
        "kl": generic.get("kl"),
        "replies_changed": generic.get("replies_changed"),
        "leakage": generic.get("leakage"),
        # optimizer steps only: preparation (forms, lower layers, a base's one-time rehearsal text) apart
        "train_seconds": _minus(engine.get("seconds"), engine.get("seconds_prepare")),
        "prepare_seconds": engine.get("seconds_prepare"),
        "train_tokens": engine.get("tokens"),
        "steps": engine.get("steps"),
        "tokens_per_s": engine.get("tokens_per_s"),
        "job_seconds": result.get("seconds"),
        "eval_seconds_gate": metrics.get("eval_seconds"),
        "memory_bytes": engine.get("memory_bytes"),
        "n_new_chunks": result.get("n_new"),
        "n_replay_chunks": result.get("n_replay"),
        **input_tokens(result.get("checkpoint_id")),
        "retention": retention_cells(report),
        "probe_hits": {r.key: [bool(r.question_hit), bool(r.cloze_hit)] for r in probes},
        "wall_seconds": seconds,
    }


# -- what a user would do instead -----------------------------------------------------------------
def live_chunks() -> list[str]:
    """Every chunk of the org's current material (what a retriever would index tonight)."""
    from sqlalchemy import select

    from orgmem.db.models import Chunk
    from orgmem.db.session import session_scope
    from orgmem.lineage import get_org
    from orgmem.pipeline.replay import live_consumed

    with session_scope() as s:
        org = get_org(s, ORG)
        live = [c.text for c in live_consumed(s, org, "org")]
        pending = s.scalars(select(Chunk.text).where(Chunk.org_id == org.id, Chunk.status == "pending")).all()
    return live + list(pending)


def baseline_rows(base, probes, night: int) -> dict:
    """Closed book and BM25 top-3 over the live chunks: question recall with the same check."""
    from benchmarks.baselines import Retriever, answer_all, context_prompt, probe_record

    asked = [p for p in probes if p.question]
    chunks = live_chunks()
    retriever = Retriever(chunks)
    out = {}
    for name, pick in (("closed_book", lambda p: []), ("bm25_top3", lambda p: retriever.top(p.question))):
        picked = [pick(p) for p in asked]
        prompts = [
            context_prompt(p.question, [chunks[i] for i in ix]) for p, ix in zip(asked, picked, strict=True)
        ]
        replies = answer_all(base, prompts, 32, 16)
        recs = [
            probe_record(p, night, r, ix, None, 0) for p, r, ix in zip(asked, replies, picked, strict=True)
        ]
        out[name] = {
            "n": len(recs),
            "question_recall": sum(r["question_hit"] for r in recs) / max(len(recs), 1),
            "stale": sum(r["question_stale"] for r in recs),
        }
    return out


# -- one policy -----------------------------------------------------------------------------------
def run_policy(base, cfg: ContinualConfig, policy: str, root: Path, run: dict, save) -> dict:
    from benchmarks.org_generator import GeneratorConfig, OrgGenerator
    from benchmarks.orggen.generator import night_sizes

    gen = OrgGenerator(GeneratorConfig(seed=cfg.seed, **night_sizes(cfg)))
    run["org_name"] = gen.org_name
    with org_home(root, cfg, policy) as sources, serve_folder(sources) as url:
        sources.mkdir(parents=True, exist_ok=True)
        for night in range(1, cfg.nights + 1):
            t0 = time.time()
            summary = gen.write_night(sources, night)
            if night == 1:
                register_sources(sources, url)
            sync, consolidation = run_night()
            probes, all_probes = current_probes(gen, night)
            info = {
                "new_ids": list(summary.new),
                "updated_ids": list(summary.updated),
                "deleted_paths": list(summary.deleted),
                "update_keys": {p.key for p in probes if p.replaces},
            }
            report = evaluate_served(base, probes, all_probes, night, cfg)
            row = night_row(night, info, sync, consolidation, report, time.time() - t0)
            run["nights"].append(row)
            print(
                f"[{policy}] night {night}: gate {row['gate_status']}, "
                f"question {_pct(row['question_recall'])}, "
                f"cloze {_pct(row['cloze_recall'])}, updates {_pct(row['update_accuracy'])}, "
                f"ppl x{_num(row['ppl_ratio'])}, changed {row['replies_changed']}, "
                f"train {_num(row['train_seconds'])} s",
                file=sys.stderr,
                flush=True,
            )
            save()
        if cfg.baselines:
            run["baselines"] = baseline_rows(base, probes, cfg.nights)
    return run


# -- summary, table, plot -------------------------------------------------------------------------
def kept_of_learned(run: dict, first: int = 1) -> list[float | None]:
    """Per night n: of night-``first`` facts answered (question) after night ``first`` and still
    current, the share answered after night n."""
    nights = run["nights"]
    if len(nights) < first:
        return []
    learned = [k for k, (q, _) in nights[first - 1]["probe_hits"].items() if q and k.endswith(f"@{first}")]
    out = []
    for row in nights:
        still = [k for k in learned if k in row["probe_hits"]]
        out.append(sum(row["probe_hits"][k][0] for k in still) / len(still) if still else None)
    return out


def summarise(run: dict) -> dict:
    nights = run["nights"]
    last, first = nights[-1], nights[0]
    kept = kept_of_learned(run)

    def per_new_token(row):
        new = row.get("new_tokens")
        return row["train_seconds"] / new if new and row.get("train_seconds") else None

    cost = [per_new_token(r) for r in nights]
    return {
        "policy": run["policy"],
        "nights": len(nights),
        "kept_night1": kept[-1] if kept else None,
        "question_recall": last["question_recall"],
        "cloze_recall": last["cloze_recall"],
        "update_accuracy": last["update_accuracy"],
        "update_stale": last["update_stale"],
        "ppl_ratio": last["ppl_ratio"],
        "kl": last["kl"],
        "replies_changed": last["replies_changed"],
        "leakage": last["leakage"],
        "time_ratio": (last["train_seconds"] / first["train_seconds"])
        if last.get("train_seconds") and first.get("train_seconds")
        else None,
        "time_per_new_token_ratio": (cost[-1] / cost[0]) if cost[-1] and cost[0] else None,
        "replay_tokens_last": last.get("replay_tokens", 0),
        "train_tokens_last": last.get("train_tokens"),
        "memory_mb": (last["memory_bytes"] or 0) / 1e6 if last.get("memory_bytes") else None,
        "promoted": sum(r["gate_status"] == "promoted" for r in nights),
        "facts_held": last["n_probes"],
        "bytes_per_fact": (last["memory_bytes"] / last["n_probes"])
        if last.get("memory_bytes") and last["n_probes"]
        else None,
        "baselines": run.get("baselines"),
    }


TARGETS = [
    ("kept_night1", "night-1 kept", "{:.0%}", lambda v: v >= 0.90),
    ("question_recall", "question", "{:.0%}", lambda v: v >= 0.80),
    ("cloze_recall", "cloze", "{:.0%}", None),
    ("update_accuracy", "updates", "{:.0%}", lambda v: v >= 0.90),
    ("update_stale", "stale", "{:.0%}", lambda v: v <= 0.05),
    ("ppl_ratio", "ppl ratio", "{:.3f}", lambda v: v <= 1.02),
    ("replies_changed", "changed /20", "{:.0f}", lambda v: v <= 5),
    ("leakage", "leaks", "{:.0f}", None),
    ("time_ratio", "time n_last/n1", "{:.2f}", lambda v: v <= 1.5),
    ("time_per_new_token_ratio", "s/new-token ratio", "{:.2f}", lambda v: v <= 1.5),
    ("replay_tokens_last", "replay tok", "{:,.0f}", None),
    ("promoted", "promoted", "{:.0f}", None),
    ("facts_held", "facts held", "{:.0f}", None),
    ("memory_mb", "memory MB", "{:.1f}", None),
    ("bytes_per_fact", "bytes/fact", "{:,.0f}", None),
]


def _cell(value, fmt: str, ok) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    text = fmt.format(value)
    return text if ok is None else f"{text} {'✓' if ok(value) else '✗'}"


def markdown(payload: dict) -> str:
    c = payload["config"]
    lines = [
        f"{payload['nights_done']} nights of a generated org ({c['facts_per_night']} new facts, "
        f"{c['updates_per_night']} updates, {c['deletes_per_night']} deleted document(s) a night, "
        f"seed {c['seed']}) "
        f"on {c['base']}, through sync → consolidate → gate → promote; engine overrides: "
        f"{c['engine'] or 'none'}; {payload['machine']}; code {payload.get('commit') or 'unknown'}; "
        f"wall {payload['wall_seconds'] / 60:.0f} min. ✓/✗: the issue's target at the last night.",
        "",
        "| policy | " + " | ".join(t for _, t, _, _ in TARGETS) + " |",
        "|---|" + "---|" * len(TARGETS),
    ]
    for s in payload["summary"]:
        lines.append(
            f"| {s['policy']} | " + " | ".join(_cell(s.get(k), f, ok) for k, _, f, ok in TARGETS) + " |"
        )
    base_rows = [(s["policy"], s["baselines"]) for s in payload["summary"] if s.get("baselines")]
    if base_rows:
        _, b = base_rows[0]
        lines += [
            "",
            f"Same questions at the last night without memory: closed book "
            f"{_pct(b['closed_book']['question_recall'])}, BM25 top-3 of the live chunks in the prompt "
            f"{_pct(b['bm25_top3']['question_recall'])} (stale {b['bm25_top3']['stale']}).",
        ]
    for run in payload["runs"]:
        lines += [
            "",
            f"**{run['policy']}** — question recall of each night's facts (rows: after night n; "
            "columns: the night the value became true):",
            "",
        ]
        n = len(run["nights"])
        lines.append(
            "| after | " + " | ".join(f"n{k}" for k in range(1, n + 1)) + " | all | gate | train s |"
        )
        lines.append("|---|" + "---|" * (n + 3))
        for row in run["nights"]:
            cells = [_pct((row["retention"].get(str(k)) or {}).get("question")) for k in range(1, n + 1)]
            lines.append(
                f"| {row['night']} | "
                + " | ".join(cells)
                + f" | {_pct(row['question_recall'])} | {row['gate_status']} | {_num(row['train_seconds'])} |"
            )
    return "\n".join(lines) + "\n"


def plot(payload: dict, path: Path) -> str | None:
    """Retention curves: question recall of night-1 facts, of all current facts, per policy."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -r benchmarks/requirements-bench.txt): no plot"
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for run in payload["runs"]:
        xs = [r["night"] for r in run["nights"]]
        n1 = [(r["retention"].get("1") or {}).get("question") for r in run["nights"]]
        axes[0].plot(xs, [v if v is not None else float("nan") for v in n1], marker="o", label=run["policy"])
        allq = [
            r["question_recall"] if r["question_recall"] is not None else float("nan") for r in run["nights"]
        ]
        axes[1].plot(xs, allq, marker="o", label=run["policy"])
    axes[0].set_title("night-1 facts (question recall)")
    axes[1].set_title("all facts true that night")
    for ax in axes:
        ax.set_xlabel("after night")
        ax.set_ylim(0, 1)
        ax.axhline(0.8, color="grey", linewidth=0.8, linestyle="--")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("share answered")
    axes[1].legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def write_docs(markdown_text: str, png: Path) -> None:
    doc = REPO / "docs" / "benchmarks.md"
    text = doc.read_text()
    rel = os.path.relpath(png, doc.parent)
    block = f"{DOCS_BEGIN}\n{markdown_text}\n![retention curves]({rel})\n{DOCS_END}"
    if DOCS_BEGIN in text and DOCS_END in text:
        head, rest = text.split(DOCS_BEGIN, 1)
        text = head + block + rest.split(DOCS_END, 1)[1]
    else:
        text += f"\n## Continual (`benchmarks/continual.py`)\n\n{block}\n"
    doc.write_text(text)


def _minus(a, b):
    return None if a is None else a - (b or 0.0)


def _pct(v) -> str:
    return "–" if v is None else f"{v:.0%}"


def _num(v) -> str:
    return "–" if v is None else f"{v:.3g}"


def machine(cfg: ContinualConfig) -> str:
    return f"{platform.machine()} {os.cpu_count()} cpu, {cfg.threads} torch thread(s)"


def git_commit() -> str | None:
    import subprocess

    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return done.stdout.strip() or None


def finish(payload: dict, cfg: ContinualConfig, docs: bool) -> dict:
    payload["summary"] = [summarise(r) for r in payload["runs"] if r["nights"]]
    payload["nights_done"] = max((len(r["nights"]) for r in payload["runs"]), default=0)
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "continual.json").write_text(json.dumps(payload, indent=1, default=str) + "\n")
    text = markdown(payload) if payload["summary"] else "(no night finished)\n"
    (cfg.out / "continual.md").write_text(text)
    why = plot(payload, cfg.out / "retention.png") if payload["summary"] else "no data"
    if why:
        print(why, file=sys.stderr)
    if docs and payload["summary"]:
        write_docs(text, cfg.out / "retention.png")
    return payload


def run(cfg: ContinualConfig, docs: bool) -> dict:
    import torch

    from orgmem.pipeline.state import shared_base

    torch.set_num_threads(cfg.threads)
    t0 = time.time()
    payload = {
        "config": {**asdict(cfg), "out": str(cfg.out), "work": str(cfg.work)},
        "machine": machine(cfg),
        "commit": git_commit(),
        "runs": [],
        "wall_seconds": 0.0,
    }
    root = Path(cfg.work) if cfg.work else Path(tempfile.mkdtemp(prefix="orgmem-continual-"))
    try:
        for policy in cfg.policies:
            if (root / policy).exists():
                shutil.rmtree(root / policy)
            run_entry = {"policy": policy, "nights": []}
            payload["runs"].append(run_entry)

            def save() -> None:
                payload["wall_seconds"] = time.time() - t0
                finish(payload, cfg, docs=False)

            with org_home(root, cfg, policy):
                base = shared_base(cfg.base)  # loaded once, shared by every policy run
            run_policy(base, cfg, policy, root, run_entry, save)
            payload["wall_seconds"] = time.time() - t0
            finish(payload, cfg, docs=False)
    finally:
        if cfg.work is None:
            shutil.rmtree(root, ignore_errors=True)
    payload["wall_seconds"] = time.time() - t0
    return finish(payload, cfg, docs)


def main(argv: list[str] | None = None) -> int:
    cfg, args = parse_args(argv)
    if args.render:
        payload = json.loads(args.render.read_text())
        cfg.out = args.render.parent
        payload = finish(payload, cfg, args.docs)
    else:
        payload = run(cfg, args.docs)
    print(markdown(payload) if payload.get("summary") else "no night finished")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
