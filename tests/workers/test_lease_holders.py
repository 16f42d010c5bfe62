"""Issue 14 finding 4 on SQLite: a killed ``--inline`` consolidation must not lock its org until its
lease expires, ``orgmem jobs cancel`` frees the org, and every refusal names what holds the org
and how to free it.

A "killed inline run" is a separate Python process that claims the job and exits without
releasing it, which is what a SIGKILL leaves behind.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from orgmem.cli.main import app
from orgmem.db import session_scope
from orgmem.db.models import Checkpoint
from orgmem.errors import ConflictError
from orgmem.jobs import (
    JobSettings,
    LeaseHeldError,
    cancel_job,
    claim_job,
    create_job,
    get_job,
    job_dict,
    run_job,
)
from orgmem.lineage import get_org
from orgmem.ops.jobs import create_consolidation, run_inline
from tests.pipeline.conftest import FAST_PARAMS, NIGHT1, add_chunks
from tests.workers.procs import wait_until

FAST = JobSettings(lease_seconds=2.0, heartbeat_seconds=0.2, max_attempts=1, lease_wait_seconds=0.5)
HOST = socket.gethostname()
runner = CliRunner()

CLAIM_AND_DIE = """
import os, sys
from orgmem.db import session_scope
from orgmem.jobs import claim_job
with session_scope(write=True) as s:
    claim_job(s, sys.argv[1], "inline-killed", 600)
print(os.getpid())
os._exit(0)  # gone without releasing anything, like a SIGKILL
"""


def _claim_in_dying_process(job_id: str) -> int:
    """Claim ``job_id`` (600 s lease) in another process that then exits; returns its pid."""
    done = subprocess.run(
        [sys.executable, "-c", CLAIM_AND_DIE, job_id], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip())


def _new(org: str = "acme") -> str:
    with session_scope(write=True) as s:
        return create_job(s, get_org(s, org), "consolidate").id


def _job(job_id: str) -> dict:
    with session_scope() as s:
        return job_dict(s, get_job(s, job_id), events=True)


def cli(*args: str, code: int = 0):
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout) if code == 0 and "--json" in args else result


def test_dead_inline_holder_does_not_block_the_rerun(org):
    dead = create_consolidation(org, actor="test")
    pid = _claim_in_dying_process(dead)
    assert _job(dead)["status"] == "running", "the killed run left its lease behind"
    rerun = create_consolidation(org, actor="test")  # refused for 600 s before the fix
    shown = _job(dead)
    assert shown["status"] == "failed" and shown["lease_owner"] is None
    assert shown["error"] == f"holder process {pid} on {HOST} is gone"
    assert any(e["level"] == "error" and "inline-killed" in e["message"] for e in shown["events"])
    with session_scope(write=True) as s:
        assert claim_job(s, rerun, "w2", 60) is not None


def test_dead_holder_does_not_block_another_jobs_claim(org):
    dead, other = _new(), _new()  # e.g. a failed job retried while another ran
    pid = _claim_in_dying_process(dead)
    with session_scope(write=True) as s:
        assert claim_job(s, other, "w2", 60) is not None
    assert _job(dead)["error"] == f"holder process {pid} on {HOST} is gone"
    assert _job(other)["lease_pid"] == os.getpid() and _job(other)["lease_host"] == HOST


def test_a_redelivered_job_of_a_dead_holder_is_taken_over(org):
    job = _new()
    pid = _claim_in_dying_process(job)
    with session_scope(write=True) as s:
        claim = claim_job(s, job, "w2", 60)
    assert claim is not None and claim.attempt == 2, "not skipped as a duplicate delivery"
    messages = [e["message"] for e in _job(job)["events"]]
    assert f"holder process {pid} on {HOST} is gone; worker w2 takes the job over" in messages


def test_live_holder_refusals_name_it_and_how_to_free_the_org(org):
    first = create_consolidation(org, actor="test")
    with session_scope(write=True) as s:
        claim_job(s, first, "w1", 60)
    with pytest.raises(ConflictError) as created:
        create_consolidation(org, actor="test")
    second = _new()
    with session_scope(write=True) as s, pytest.raises(LeaseHeldError) as claimed:
        claim_job(s, second, "w2", 60)
    for message in (str(created.value), str(claimed.value)):
        assert f"job '{first}'" in message and "worker w1" in message
        assert f"pid {os.getpid()} on {HOST}" in message
        assert "started " in message and "lease until" in message
        assert f"`orgmem jobs cancel {first}`" in message
    assert f"job '{second}' cannot start" in str(claimed.value)
    assert _job(first)["status"] == "running", "a live holder is never released"


def test_cancel_releases_the_lease_and_the_inline_rerun_runs(org):
    """The issue's sequence: a held org, `job cancel`, then `consolidate --inline` again."""
    held = create_consolidation(org, actor="test")
    with session_scope(write=True) as s:  # alive, or on a machine orgmem cannot look at
        claim_job(s, held, "w1", 600)
    refused = cli("consolidate", "acme", "--inline", code=3)
    assert f"`orgmem jobs cancel {held}`" in refused.stderr and f"on {HOST}" in refused.stderr
    out = cli("jobs", "cancel", held).stdout
    assert "lease" in out and "released" in out
    cancelled = cli("jobs", "show", held, "--json")
    assert cancelled["status"] == "cancelled" and cancelled["lease_owner"] is None
    assert cancelled["error"].startswith("cancelled by ") and "while running" in cancelled["error"]
    rerun = cli("consolidate", "acme", "--inline", "--json")
    assert rerun["status"] == "succeeded" and rerun["error"] is None
    assert rerun["result"]["status"] == "nothing_to_do"


def test_cancelled_jobs_always_say_why(org):
    queued = cli("consolidate", "acme", "--json")["job"]
    shown = cli("jobs", "cancel", queued, "--json")
    assert shown["status"] == "cancelled" and shown["error"] and "before it started" in shown["error"]
    # an inline job refused because the org is busy is closed with the refusal as its error
    busy = _new()
    with session_scope(write=True) as s:
        claim_job(s, busy, "w1", 60)
    refused = _new()
    assert run_inline(refused).status == "waiting"
    shown = cli("jobs", "show", refused, "--json")
    assert shown["status"] == "cancelled" and f"`orgmem jobs cancel {busy}`" in shown["error"]
    assert f"job {refused} cancelled 0%: not run: org 'acme' is being consolidated" in cli(
        "job", "wait", refused, code=1
    ).stdout


def test_cancel_frees_the_org_while_the_worker_is_still_stopping(org):
    job, other = _new(), _new()
    cancelled, stopped = threading.Event(), threading.Event()

    def slow(ctx):
        cancelled.wait(10)
        stopped.wait(10)  # still running after the cancel
        ctx.check()
        return {}

    outcome = {}

    def run() -> None:
        outcome["out"] = run_job(job, slow, owner="w1", settings=FAST)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        wait_until(lambda: _job(job)["status"] == "running", 10, "the job to start")
        with session_scope(write=True) as s:
            cancel_job(s, job, actor="alice")
        cancelled.set()
        assert _job(job)["lease_owner"] is None, "freed at once, not when the worker stops"
        with session_scope(write=True) as s:
            assert claim_job(s, other, "w2", 60) is not None
    finally:
        stopped.set()
        thread.join(10)
    assert outcome["out"].status == "cancelled"
    assert _job(job)["status"] == "cancelled" and _job(other)["lease_owner"] == "w2"


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setenv("ORGMEM_BASE_MODEL", "tiny-random")
    from orgmem.config import get_settings

    get_settings.cache_clear()


def test_a_cancel_during_the_upload_commits_no_checkpoint(tiny, org, monkeypatch):
    """Past the last check, a cancel (which frees the org) still stops the commit: the rows are
    written in a transaction that first checks the job holds its lease."""
    import orgmem.checkpoints.write as write

    add_chunks(org, NIGHT1)
    job = create_consolidation(org, actor="test", params=FAST_PARAMS)
    real_upload = write._upload

    def cancelled_meanwhile(*args, **kwargs):
        with session_scope(write=True) as s:
            cancel_job(s, job, actor="alice")
        return real_upload(*args, **kwargs)

    monkeypatch.setattr(write, "_upload", cancelled_meanwhile)
    assert run_inline(job).status == "cancelled"
    with session_scope() as s:
        assert list(s.scalars(select(Checkpoint.id))) == []
    monkeypatch.setattr(write, "_upload", real_upload)
    again = run_inline(create_consolidation(org, actor="test", params=FAST_PARAMS))
    assert again.status == "succeeded" and again.result["status"] == "promoted"
    with session_scope() as s:
        assert len(list(s.scalars(select(Checkpoint.id)))) == 1


def test_holder_pid_is_recorded_and_shown(org):
    job = _new()
    with session_scope(write=True) as s:
        claim_job(s, job, "w1", 60)
    text = cli("jobs", "show", job).stdout
    assert re.search(rf"worker    w1 \(pid {os.getpid()} on {re.escape(HOST)}, lease until ", text)
