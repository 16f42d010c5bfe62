"""``orgmem demo``: the whole nightly loop on the embedded defaults, on the shipped sample org.

What it does, printing as it goes: registers the sample org's documents folder and code
repository as sources, starts a worker (filesystem broker: no server), and runs two nights the
way the scheduler does (sync every source, then consolidate). Each night ends with the gate's
verdict; before and after, the shipped hand-written probes are asked of the served model (cloze
and question recall), and at the end the checkpoint tree and serving history are shown.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from orgmem.config import get_settings
from orgmem.db.session import session_scope
from orgmem.errors import OrgmemError

Say = Callable[[str], None]
NIGHT2_DOC = """# Company news, December 2026

Kestrel Freight opened a Riga office on 7 December 2026; it is led by Ilze Berzina.
The Heron route planner was upgraded to version 3.2, which adds route batching.
"""
NIGHT2_CODE = '''"""Heron route cache settings."""

# Routes older than this many minutes are stale.
ROUTE_CACHE_TTL_MINUTES = 45
# Redis database holding the route cache.
ROUTE_CACHE_REDIS_DB = 3
'''
NIGHT2_PROBES = [
    {
        "id": "riga-lead",
        "cloze": "Kestrel Freight opened a Riga office on 7 December 2026; it is led by",
        "question": "Who leads the Riga office of Kestrel Freight?",
        "answer": "Ilze Berzina",
        "night": 2,
    },
    {
        "id": "cache-ttl",
        "cloze": "ROUTE_CACHE_TTL_MINUTES =",
        "question": "After how many minutes are Heron routes stale?",
        "answer": "45",
        "night": 2,
    },
]
#: A lighter recipe than the engine's defaults so two nights of SmolLM2 fit a few minutes on 2 CPU
#: cores; ``ORGMEM_PIPELINE_ENGINE`` / ``ORGMEM_PIPELINE_OPTIONS`` set by the user win.
DEMO_ENGINE = '{"epochs": 3.0}'
DEMO_OPTIONS = '{"new_probes": 8, "old_probes": 8}'
_GIT = {
    "GIT_AUTHOR_NAME": "orgmem demo",
    "GIT_AUTHOR_EMAIL": "demo@orgmem.invalid",
    "GIT_COMMITTER_NAME": "orgmem demo",
    "GIT_COMMITTER_EMAIL": "demo@orgmem.invalid",
}


def _sample_dir() -> Path:
    return Path(str(resources.files("orgmem").joinpath("data/sample_org")))


def _git(repo: Path, *args: str) -> None:
    done = subprocess.run(  # nosec B603 B607  # argv list, no shell; git from PATH as the demo's user
        ["git", *args], cwd=repo, env={**os.environ, **_GIT}, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise OrgmemError(f"git {' '.join(args)} failed in {repo}: {done.stderr.strip()}")


def demo_workdir(settings, org: str) -> Path:
    """Where the demo copies the sample sources: beside ORGMEM_HOME, not in it, because no source may
    be read from orgmem's own home (docs/security.md); under ORGMEM_SOURCE_ROOTS when those are set."""
    if settings.source_roots:
        root = settings.source_roots[0]
        if "{org}" in root:
            return Path(root.replace("{org}", org)).expanduser() / "orgmem-demo"
        return Path(root).expanduser() / "orgmem-demo" / org
    return settings.home.with_name(settings.home.name + "-demo") / org


def prepare_sources(workdir: Path) -> tuple[Path, Path]:
    """A copy of the sample documents and a git repository made from the sample code."""
    sample = _sample_dir()
    docs, repo = workdir / "docs", workdir / "repo"
    shutil.copytree(sample / "docs", docs)
    shutil.copytree(sample / "repo", repo)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "sample code")
    return docs, repo


def night2_changes(docs: Path, repo: Path) -> None:
    (docs / "news-2026-12.md").write_text(NIGHT2_DOC)
    (repo / "heron_cache.py").write_text(NIGHT2_CODE)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "heron cache settings")


class DemoWorker:
    """An ``orgmem worker`` subprocess for the demo's duration (its log in the demo folder)."""

    def __init__(self, log: Path) -> None:
        self.log = log
        cmd = [sys.executable, "-m", "orgmem.cli.main", "worker", "--queues", "ingest,consolidate"]
        self.proc = subprocess.Popen(  # nosec B603  # this interpreter running orgmem's own worker
            cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise OrgmemError(f"the demo worker exited ({self.proc.returncode}); see {self.log}")
            if "ready." in self.log.read_text(errors="replace"):
                return
            time.sleep(0.3)
        raise OrgmemError(f"the demo worker did not start within {timeout} s; see {self.log}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def follow_job(job_id: str, say: Say, seen: set[int], poll: float = 1.0) -> dict:
    """Print the job's new events until it finishes; returns its final view."""
    from orgmem.jobs import FINISHED, get_job, job_dict, job_events

    while True:
        with session_scope() as session:
            job = get_job(session, job_id)
            for event in job_events(session, job):
                if event.id not in seen:
                    seen.add(event.id)
                    say(f"  {event.created_at:%H:%M:%S} [{job.kind}] {event.message}")
            view = job_dict(session, job)
        if view["status"] in FINISHED:
            return view
        time.sleep(poll)


def run_night(org: str, say: Say, *, inline: bool) -> dict:
    """Sync every source, then consolidate (what the scheduler runs); returns the consolidate job."""
    from orgmem.ops.jobs import create_sync, run_inline
    from workers.queue import CeleryJobQueue

    sync_id = create_sync(org, actor="demo", then_consolidate=True)
    seen: set[int] = set()
    if inline:
        run_inline(sync_id)
    else:
        CeleryJobQueue().send(sync_id)
    sync = follow_job(sync_id, say, seen)
    next_ids = _chained_jobs(sync_id) if sync["status"] == "succeeded" else []
    if sync["status"] != "succeeded" or not next_ids:
        raise OrgmemError(
            f"the sync job {sync_id} did not lead to a consolidation: {sync['error'] or 'see its events'}"
        )
    return follow_job(next_ids[0], say, set())


def _chained_jobs(job_id: str, wait: float = 60.0, poll: float = 0.5) -> list[str]:
    """The jobs ``job_id`` chained to. A worker records the chain just after the job's status turns
    final, so a reader that saw the final status may have to wait a moment for it."""
    deadline = time.monotonic() + wait
    while True:
        found = [e["data"]["next_job"] for e in _events(job_id) if e["data"].get("next_job")]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(poll)


def _events(job_id: str) -> list[dict]:
    from orgmem.jobs import get_job, job_dict

    with session_scope() as session:
        return job_dict(session, get_job(session, job_id), events=True)["events"]


def probe_recall(org: str, probes, say: Say, label: str) -> None:
    """Ask the shipped probes of the model the org serves now (the bare base before night 1)."""
    from orgmem.eval import EvalConfig, evaluate
    from orgmem.lineage import get_org
    from orgmem.pipeline.evaluation import memory_on
    from orgmem.pipeline.state import load_parent, shared_base
    from orgmem.store import open_store

    with session_scope() as session:
        served = get_org(session, org).served_checkpoint_id
        memory = load_parent(session, open_store(), served).memory if served else None
    base = shared_base(get_settings().base_model)
    with memory_on(base, memory) as model:
        report = evaluate(model, base.tokenizer, probes, config=EvalConfig())
    s = report.summary()
    say(
        f"{label}: cloze recall {_pct(s['cloze_recall'])}, question recall {_pct(s['question_recall'])} "
        f"on {s['n_probes']} hand-written probes (served: {served or 'bare base'})"
    )


def _pct(x) -> str:
    return "-" if x is None or x != x else f"{x:.0%}"


def show_lineage(org: str, say: Say) -> None:
    from orgmem.lineage import get_org, list_tree, serving_history

    with session_scope() as session:
        org_row = get_org(session, org)
        say("checkpoint tree:")
        for node in list_tree(session, org_row):
            ck, gate = node.checkpoint, (node.checkpoint.metrics or {}).get("gate", {})
            marks = ", ".join(m for m, on in (("served", node.is_served), ("head", node.is_head)) if on)
            say(
                f"  {'  ' * node.depth}{ck.id} {ck.status}{f' ({marks})' if marks else ''} "
                f"parent={ck.parent_id or '-'} gate={'passed' if gate.get('passed') else 'failed'}"
            )
        say("serving history:")
        for ev in serving_history(session, org_row):
            say(f"  {ev.created_at:%H:%M:%S} {ev.action} {ev.checkpoint_id} by {ev.actor}")


def show_accountability(org: str, at: datetime, say: Say) -> None:
    """What an auditor asks, through the real CLI: what answered employees between nights, who did what."""
    cli = str(Path(sys.executable).with_name("orgmem"))
    for args in (["history", org, "--at", at.isoformat()], ["audit", org]):
        say(f"$ orgmem {' '.join(args)}")
        done = subprocess.run([cli, *args], capture_output=True, text=True, check=False)  # nosec B603
        for line in (done.stdout + done.stderr).rstrip().splitlines():
            say(f"  {line}")


def run_demo(say: Say, *, org: str | None = None, inline: bool = False, probes: bool = True) -> str:
    """Two nights of the loop on the sample org; returns the org slug."""
    from orgmem.db.migrate import upgrade
    from orgmem.eval import load_probes
    from orgmem.eval.probes import probe_from_dict
    from orgmem.ingest import add_source
    from orgmem.lineage import create_org

    settings = get_settings()
    t0 = time.monotonic()
    os.environ.setdefault("ORGMEM_PIPELINE_ENGINE", DEMO_ENGINE)  # read by the worker and inline jobs
    os.environ.setdefault("ORGMEM_PIPELINE_OPTIONS", DEMO_OPTIONS)
    settings.home.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    org = org or f"sample-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    workdir = demo_workdir(settings, org)
    workdir.mkdir(parents=True, exist_ok=False)
    docs, repo = prepare_sources(workdir)
    with session_scope(write=True) as session:
        org_row = create_org(session, org, "Kestrel Freight (sample)", actor="demo")
        add_source(session, org_row, "docs", "docs", {"path": str(docs)}, actor="demo")
        add_source(session, org_row, "git", "code", {"path": str(repo)}, actor="demo")
    say(f"org {org!r}: sources 'docs' ({docs}) and 'code' ({repo}); base model {settings.base_model}")
    night1_probes = load_probes(_sample_dir() / "probes.jsonl")
    all_probes = [*night1_probes, *(replace(probe_from_dict(p), night=2) for p in NIGHT2_PROBES)]
    worker = None
    between_nights = datetime.now(UTC)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below: stop the worker
    try:
        if not inline:
            worker = DemoWorker(workdir / "worker.log")
            say(f"worker pid {worker.proc.pid} started (log {workdir / 'worker.log'})")
            worker.wait_ready()
        if probes:
            probe_recall(org, night1_probes, say, "before night 1")
        for n in (1, 2):
            if n == 2:
                night2_changes(docs, repo)
                say("night 2 material: a new news document and a new code file")
            say(f"=== night {n}: sync all sources, then consolidate ===")
            job = run_night(org, say, inline=inline)
            result = job.get("result") or {}
            if job["status"] != "succeeded":
                raise OrgmemError(f"night {n} consolidation job {job['id']} {job['status']}: {job['error']}")
            say(f"night {n}: checkpoint {result.get('checkpoint_id')} {result.get('status')}")
            for reason in (result.get("gate") or {}).get("checks", []):
                say(f"  gate: {reason['message']}")
            if probes:
                probe_recall(org, all_probes if n == 2 else night1_probes, say, f"after night {n}")
            if n == 1:
                between_nights = datetime.now(UTC)
    finally:
        if worker is not None:
            worker.stop()
    show_lineage(org, say)
    show_accountability(org, between_nights, say)
    say(
        f"demo finished in {time.monotonic() - t0:.0f} s; see `orgmem checkpoints {org}`, `orgmem jobs {org}`"
    )
    return org
