"""Real worker processes on the embedded defaults (filesystem broker, SQLite, local store, tiny
base), driven through the CLI: a worker, or a `consolidate --inline` run, killed with SIGKILL in
the middle of a consolidation."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess

import pytest
from sqlalchemy import select

from orgmem.db import session_scope
from orgmem.db.models import Checkpoint, CheckpointObject, Chunk
from orgmem.store import open_store
from tests.pipeline.conftest import FAST_ENGINE, FAST_PIPELINE, NIGHT1, add_chunks
from tests.workers.procs import (
    Worker,
    cli_json,
    job_view,
    orgmem_cmd,
    retry_on_new_worker,
    run_cli,
    wait_training,
    wait_until,
)

#: Long enough on the tiny base (a few seconds of steps) to kill the worker while it trains.
SLOW_ENGINE = {**FAST_ENGINE, "epochs": 40.0, "max_steps": None}
WORKER_ENV = {
    "ORGMEM_BASE_MODEL": "tiny-random",
    "ORGMEM_LEASE_SECONDS": "3",
    "ORGMEM_HEARTBEAT_SECONDS": "0.5",
    "ORGMEM_RECOVER_INTERVAL_SECONDS": "1",
    "ORGMEM_RETRY_BACKOFF_SECONDS": "1",
    "OMP_NUM_THREADS": "1",
}


@pytest.fixture
def worker_env(org, monkeypatch):
    """Environment of worker subprocesses: tiny base, 3-second leases, fast recovery."""
    for key, value in WORKER_ENV.items():
        monkeypatch.setenv(key, value)
    return dict(os.environ)


def lineage_state(org_slug: str):
    """(checkpoint ids, stored objects no row references, chunk statuses)."""
    with session_scope() as s:
        cks = list(s.scalars(select(Checkpoint.id)))
        referenced = set(s.scalars(select(CheckpointObject.key)))
        statuses = list(s.scalars(select(Chunk.status)))
    stored = {o.key for o in open_store().list(f"orgs/{org_slug}/")}
    return cks, stored - referenced, statuses


def test_worker_killed_mid_consolidation_job_retried_once(worker_env, tmp_path):
    ids = add_chunks("acme", NIGHT1)
    first = Worker(tmp_path / "w1.log", worker_env)
    first.wait_ready()
    job = run_cli(
        "consolidate", "acme", "--engine", json.dumps(SLOW_ENGINE), "--pipeline", json.dumps(FAST_PIPELINE)
    ).stdout.strip()
    wait_training(job, 90)
    first.kill9()
    dead = job_view(job)
    assert dead["status"] == "running" and str(first.pid) in dead["lease_owner"]
    cks, _, statuses = lineage_state("acme")
    assert cks == [] and statuses == ["pending"] * len(ids), "pending data intact"

    done = retry_on_new_worker(tmp_path / "w2.log", worker_env, job, "150")
    events = [e["message"] for e in job_view(job)["events"]]
    assert any(f"lease of worker {dead['lease_owner']} expired; job re-queued" == m for m in events)
    cks, orphans, statuses = lineage_state("acme")
    assert cks == [done["result"]["checkpoint_id"]], "exactly one checkpoint"
    assert orphans == set() and statuses == ["consumed"] * len(ids)
    tree = cli_json("checkpoints", "acme")
    assert tree["served_checkpoint_id"] == cks[0]
    assert [n["id"] for n in tree["checkpoints"] if n["served"]] == cks


def test_killed_inline_consolidation_frees_the_org_at_once(worker_env, tmp_path):
    """Issue 14 finding 4: `consolidate --inline` killed mid-training used to lock the org for its
    whole lease; the rerun now finds the holder process gone, fails that job and runs."""
    ids = add_chunks("acme", NIGHT1)
    slow = ("--engine", json.dumps(SLOW_ENGINE), "--pipeline", json.dumps(FAST_PIPELINE))
    log = tmp_path / "inline.log"
    proc = subprocess.Popen(
        orgmem_cmd("consolidate", "acme", "--inline", *slow),
        env={**worker_env, "ORGMEM_LEASE_SECONDS": "600", "ORGMEM_HEARTBEAT_SECONDS": "0"},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until(lambda: cli_json("jobs", "acme"), 90, "the inline job to be created")
        job = cli_json("jobs", "acme")[0]["id"]
        wait_until(
            lambda: any("training on base" in e["message"] for e in job_view(job)["events"]),
            90,
            "training to start",
        )
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert job_view(job)["lease_pid"] == proc.pid, "the killed run left its lease behind"
    fast = ("--engine", json.dumps(FAST_ENGINE), "--pipeline", json.dumps(FAST_PIPELINE))
    rerun = cli_json("consolidate", "acme", "--inline", *fast)
    assert rerun["status"] == "succeeded" and rerun["result"]["status"] == "promoted", rerun["error"]
    killed = job_view(job)
    assert killed["status"] == "failed" and killed["lease_owner"] is None
    assert killed["error"] == f"holder process {proc.pid} on {socket.gethostname()} is gone"
    cks, orphans, statuses = lineage_state("acme")
    assert cks == [rerun["result"]["checkpoint_id"]] and orphans == set()
    assert statuses == ["consumed"] * len(ids)
