"""A consolidation job with ``ORGMEM_CONSOLIDATE_PROCS=2``: a killed rank fails the attempt
retryably with nothing committed, and the retry trains, commits and promotes."""

from __future__ import annotations

from sqlalchemy import select

from orgmem.config import get_settings
from orgmem.db import session_scope
from orgmem.db.models import Checkpoint, Chunk
from orgmem.engine.dp_worker import KILL_RANK_ENV, KILL_STEP_ENV
from orgmem.jobs import get_job, job_dict, run_job
from orgmem.lineage import get_org
from orgmem.ops.handlers import dispatch
from orgmem.ops.jobs import create_consolidation
from orgmem.store import open_store
from tests.fixtures_home_db import retrying_job_settings
from tests.pipeline.conftest import FAST_PARAMS, NIGHT1, add_chunks

SETTINGS = retrying_job_settings(lease_seconds=30.0, heartbeat_seconds=1.0)


def _org_state(org_slug: str):
    with session_scope() as s:
        org = get_org(s, org_slug)
        checkpoints = list(s.scalars(select(Checkpoint).where(Checkpoint.org_id == org.id)))
        chunks = {c.id: c.status for c in s.scalars(select(Chunk).where(Chunk.org_id == org.id))}
        return org.head_checkpoint_id, [(c.id, c.status, c.metrics) for c in checkpoints], chunks


def _events(job_id: str) -> list[str]:
    with session_scope() as s:
        return [e["message"] for e in job_dict(s, get_job(s, job_id), events=True)["events"]]


def test_killed_rank_fails_the_attempt_then_the_retry_promotes(org, monkeypatch):
    monkeypatch.setenv("ORGMEM_CONSOLIDATE_PROCS", "2")
    get_settings.cache_clear()
    chunk_ids = add_chunks(org, NIGHT1)
    job = create_consolidation(org, actor="test", params=FAST_PARAMS)

    monkeypatch.setenv(KILL_RANK_ENV, "1")
    monkeypatch.setenv(KILL_STEP_ENV, "2")
    first = run_job(job, dispatch, owner="w1", settings=SETTINGS)
    assert first.status == "retry", first.error
    assert "rank 1 killed by signal 9 (SIGKILL)" in first.error and "rank logs in" in first.error
    head, checkpoints, chunks = _org_state(org)
    assert head is None and checkpoints == [], "no checkpoint row"
    assert all(chunks[i] == "pending" for i in chunk_ids), "the material waits for the retry"
    assert not list(open_store().list(f"orgs/{org}/checkpoints/")), "no object uploaded"

    monkeypatch.delenv(KILL_RANK_ENV)
    second = run_job(job, dispatch, owner="w1", settings=SETTINGS)
    assert second.status == "succeeded", second.error
    assert second.result["status"] == "promoted"
    head, checkpoints, chunks = _org_state(org)
    ((ck_id, status, metrics),) = checkpoints
    assert head == ck_id and status == "promoted"
    assert (
        metrics["engine"]["procs"] == 2 and metrics["engine"]["steps"] == FAST_PARAMS["engine"]["max_steps"]
    )
    assert all(chunks[i] == "consumed" for i in chunk_ids)
    steps = FAST_PARAMS["engine"]["max_steps"]
    assert any(m.startswith(f"training step {steps}/{steps}") for m in _events(job)), "rank 0's progress"
    assert not list((get_settings().home / "tmp").glob("*/inputs.json")), "no org text left behind"
