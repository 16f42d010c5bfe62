"""A worker killed with SIGKILL in the middle of a consolidation, on real services (PostgreSQL,
Redis as broker, the real S3 server): its job is re-delivered to a second worker, which finishes
it. In the end: one checkpoint, the job succeeded on its second attempt, no lease left, no job
left queued or running, no stored object without a row."""

from __future__ import annotations

import json
import socket

from sqlalchemy import select

from orgmem.db import session_scope
from orgmem.db.models import Job
from tests.e2e.test_nightly_loop import lineage
from tests.pipeline.conftest import FAST_PIPELINE, NIGHT1, add_chunks
from tests.workers.procs import Worker, cli_json, job_view, retry_on_new_worker, run_cli, wait_training
from tests.workers.test_worker_process import SLOW_ENGINE


def _unfinished_jobs() -> list[tuple[str, str, str | None]]:
    with session_scope() as s:
        rows = s.scalars(
            select(Job).where(Job.status.in_(("queued", "running")) | Job.lease_owner.is_not(None))
        )
        return [(j.id, j.status, j.lease_owner) for j in rows]


def test_worker_killed_mid_consolidation_on_postgres_and_redis(real_services, tmp_path):
    env = real_services
    run_cli("org", "create", "acme")
    ids = add_chunks("acme", NIGHT1)
    first = Worker(tmp_path / "w1.log", env, queues="consolidate")
    try:
        first.wait_ready()
        overrides = ("--engine", json.dumps(SLOW_ENGINE), "--pipeline", json.dumps(FAST_PIPELINE))
        job = run_cli("consolidate", "acme", *overrides).stdout.strip()
        wait_training(job, 120)
    finally:
        first.kill9()
    dead = job_view(job)
    assert dead["status"] == "running" and dead["attempts"] == 1
    assert (dead["lease_host"], dead["lease_pid"]) == (socket.gethostname(), first.pid)
    cks, orphans, statuses = lineage("acme")
    assert cks == [] and orphans == set() and statuses == ["pending"] * len(ids)

    done = retry_on_new_worker(tmp_path / "w2.log", env, job, "240", queues="consolidate")
    assert done["lease_owner"] is None and done["lease_pid"] is None, "lease released"
    events = [e["message"] for e in job_view(job)["events"]]
    assert f"lease of worker {dead['lease_owner']} expired; job re-queued" in events
    assert [m for m in events if m.startswith("attempt ")] == ["attempt 1 started", "attempt 2 started"]
    cks, orphans, statuses = lineage("acme")
    assert [c[0] for c in cks] == [done["result"]["checkpoint_id"]], "exactly one checkpoint"
    assert orphans == set() and statuses == ["consumed"] * len(ids)
    assert _unfinished_jobs() == [], "no job left queued, running or holding a lease"
    assert cli_json("checkpoints", "acme")["served_checkpoint_id"] == cks[0][0]
