"""The nightly loop end to end on real services: PostgreSQL, Redis (broker), the real S3 server,
and real worker processes. Four kinds of sources are registered through the CLI; each night the
scheduler's job (sync every source, then consolidate) runs on the workers; the gate promotes; the
second night continues from the first. On the way, S3 becomes unreachable for one worker: its
consolidation fails cleanly, commits nothing, and succeeds when retried on a healthy worker."""

from __future__ import annotations

import signal
import socket
import subprocess
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from orgmem.db import session_scope
from orgmem.db.models import Checkpoint, CheckpointObject, Chunk
from orgmem.ops.schedule_store import job_id_for, open_job_store
from orgmem.store import open_store
from tests.connectors.source_builders import (
    ServerState,
    commit_all,
    feed_server,
    make_docs_folder,
    make_git_repo,
    make_slack_zip,
    rss_feed,
)
from tests.workers.procs import Worker, cli_json, job_view, orgmem_cmd, run_cli, wait_job, wait_until
from workers.schedules import run_nightly

NEWS_1 = (
    "n1",
    "http://news.invalid/1",
    "Heron 3.2 ships",
    "Heron 3.2 adds route batching for 1200 shipments.",
)
NEWS_2 = (
    "n2",
    "http://news.invalid/2",
    "Basalt-9 fleet",
    "The Basalt-9 freezer fleet now reports every 90 seconds.",
)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def night(org: str, timeout: float = 240, sync_id: str | None = None) -> tuple[dict, dict]:
    """What the scheduler does at night: sync all sources, then consolidate. Returns both jobs."""
    sync_id = sync_id or run_nightly(org)
    assert sync_id is not None
    sync = wait_job(sync_id, timeout)
    assert sync["status"] == "succeeded", sync["error"]

    def chained() -> list[str]:
        return [e["data"]["next_job"] for e in job_view(sync_id)["events"] if e["data"].get("next_job")]

    # the worker records the chained job just after the sync's status turns final: wait for it
    wait_until(lambda: chained(), 60, f"the consolidation chained after sync {sync_id}")
    sync = job_view(sync_id)
    next_ids = chained()
    assert len(next_ids) == 1, [e["message"] for e in sync["events"]]
    return sync, wait_job(next_ids[0], timeout)


def scheduled_night(tmp_path) -> str:
    """Schedule 02:00 Oslo time, pretend 02:00 passed while no scheduler ran, start `orgmem
    scheduler`: the missed run happens once, on start. Returns the sync job it started."""
    view = cli_json("schedule", "acme", "--cron", "0 2 * * *", "--tz", "Europe/Oslo")
    assert view["enabled"] and view["next_run"] is not None
    assert [v["org"] for v in cli_json("schedule", "list")] == ["acme"]
    with open_job_store() as store:
        job = store.lookup_job(job_id_for("acme"))
        job._modify(next_run_time=datetime.now(UTC) - timedelta(minutes=5))
        store.update_job(job)
    log = tmp_path / "scheduler.log"
    proc = subprocess.Popen(orgmem_cmd("scheduler"), stdout=log.open("ab"), stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: any(j["kind"] == "sync" for j in cli_json("jobs", "acme")), 60, "the missed run")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    syncs = [j for j in cli_json("jobs", "acme") if j["kind"] == "sync"]
    assert len(syncs) == 1 and syncs[0]["params"]["then_consolidate"] is True
    assert "scheduler stopped" in log.read_text()
    return syncs[0]["id"]


def lineage(org: str):
    with session_scope() as s:
        cks = [
            (c.id, c.parent_id, c.status)
            for c in s.scalars(select(Checkpoint).order_by(Checkpoint.created_at))
        ]
        referenced = set(s.scalars(select(CheckpointObject.key)))
        statuses = [c for (c,) in s.execute(select(Chunk.status))]
    stored = {o.key for o in open_store().list(f"orgs/{org}/")}
    return cks, stored - referenced, statuses


def test_two_nights_on_real_services_with_s3_outage(real_services, tmp_path):
    env = real_services
    repo, docs = make_git_repo(tmp_path), make_docs_folder(tmp_path)
    slack = make_slack_zip(tmp_path / "slack.zip")
    state = ServerState()
    state.routes["/feed.xml"] = (200, "application/rss+xml", rss_feed([NEWS_1]))
    with feed_server(state) as feed:
        run_cli("org", "create", "acme")
        for kind, *args in (
            ("git", "--path", str(repo)),
            ("docs", "--path", str(docs)),
            ("slack", "--zip", str(slack)),
            ("rss", "--url", f"{feed}/feed.xml"),
        ):
            run_cli("source", "add", "acme", kind, *args)

        healthy = Worker(tmp_path / "night1.log", env)
        try:
            healthy.wait_ready()
            sync1, night1 = night("acme", sync_id=scheduled_night(tmp_path))
        finally:
            healthy.stop(idle=True)
        assert {s["kind"] for s in sync1["result"]["sources"]} == {"git", "docs", "slack", "rss"}
        assert sync1["result"]["failed_sources"] == []
        assert night1["status"] == "succeeded", night1["error"]
        first = night1["result"]["checkpoint_id"]
        assert night1["result"]["status"] == "promoted" and night1["result"]["parent_id"] is None
        tree = cli_json("checkpoints", "acme")
        assert tree["served_checkpoint_id"] == first
        assert [n["status"] for n in tree["checkpoints"]] == ["promoted"]
        assert {o.key.rsplit("/", 1)[1] for o in open_store().list(f"orgs/acme/checkpoints/{first}/")} == {
            "manifest.json",
            "memory.safetensors",
            "train_state.safetensors",
        }

        # Night 2 material: a code change, a new document, a news item.
        (repo / "src" / "rates.py").write_text("HERON_RATE_LIMIT = 4200  # requests per minute\n")
        commit_all(repo, "rate limit")
        (docs / "freezers.md").write_text("# Freezers\n\nBasalt-9 freezers must stay below minus 18 C.\n")
        state.routes["/feed.xml"] = (200, "application/rss+xml", rss_feed([NEWS_1, NEWS_2]))

        s3_down = {
            **env,
            "ORGMEM_S3_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}",
            "ORGMEM_MAX_ATTEMPTS": "1",
        }
        broken = Worker(tmp_path / "outage.log", s3_down)
        try:
            broken.wait_ready()
            _, failed = night("acme")
        finally:
            broken.stop(idle=True)
    assert failed["status"] == "failed" and "unreachable" in failed["error"]
    cks, orphans, statuses = lineage("acme")
    assert cks == [(first, None, "promoted")], "nothing committed during the outage"
    assert orphans == set() and "pending" in statuses, "tonight's material is still pending"
    assert cli_json("checkpoints", "acme")["served_checkpoint_id"] == first

    healthy = Worker(tmp_path / "night2.log", env)
    try:
        healthy.wait_ready()
        run_cli("jobs", "retry", failed["id"])
        night2 = cli_json("jobs", "wait", failed["id"], "--timeout", "240")
    finally:
        healthy.stop(idle=True)
    assert night2["status"] == "succeeded" and night2["attempts"] == 1, night2["error"]
    second = night2["result"]["checkpoint_id"]
    assert night2["result"]["status"] == "promoted" and night2["result"]["parent_id"] == first
    assert night2["result"]["metrics"]["engine"]["consolidations"] == 2, "night 2 continued night 1's state"
    assert night2["result"]["n_replay"] > 0
    cks, orphans, statuses = lineage("acme")
    assert [c[:2] for c in cks] == [(first, None), (second, first)] and orphans == set()
    assert set(statuses) <= {"consumed", "excluded"}
    tree = cli_json("checkpoints", "acme")
    assert tree["served_checkpoint_id"] == second
    jobs = cli_json("jobs", "acme")
    assert [j["kind"] for j in jobs].count("consolidate") == 2
    shown = run_cli("jobs", "show", failed["id"]).stdout
    assert "unreachable" in shown and "re-queued" in shown and f"checkpoint {second} promoted" in shown
