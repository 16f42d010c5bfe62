"""Job records, leases and outcomes on the embedded SQLite database (no queue involved)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from orgmem.db import session_scope
from orgmem.db.types import utcnow
from orgmem.errors import ConflictError, NotFoundError
from orgmem.jobs import (
    JobCancelled,
    LeaseHeldError,
    LeaseLostError,
    cancel_job,
    claim_job,
    create_job,
    get_job,
    job_dict,
    list_jobs,
    recover_stale_jobs,
    renew_lease,
    requeue_failed,
    run_job,
)
from orgmem.lineage import get_org
from orgmem.store.base import StoreUnavailableError
from tests.fixtures_home_db import retrying_job_settings

FAST = retrying_job_settings(lease_seconds=2.0, heartbeat_seconds=0.2)


def _new(kind="consolidate", org="acme") -> str:
    with session_scope(write=True) as s:
        return create_job(s, get_org(s, org), kind, {"why": "test"}).id


def _job(job_id):
    with session_scope() as s:
        return job_dict(s, get_job(s, job_id), events=True)


def test_create_list_show(org):
    a, b = _new("sync"), _new()
    with session_scope() as s:
        acme = get_org(s, org)
        assert [j.id for j in list_jobs(s, acme)] == [b, a]
        assert [j.id for j in list_jobs(s, acme, kind="sync")] == [a]
    shown = _job(a)
    assert shown["status"] == "queued" and shown["org"] == "acme" and shown["params"] == {"why": "test"}
    assert shown["events"][0]["message"] == "sync job created"


def test_unknown_job_is_named(org):
    with session_scope() as s, pytest.raises(NotFoundError, match="jb_nope"):
        get_job(s, "jb_nope")


def test_one_consolidation_per_org_and_expiry(org):
    first, second = _new(), _new()
    with session_scope(write=True) as s:
        assert claim_job(s, first, "w1", 60).attempt == 1
    with session_scope(write=True) as s, pytest.raises(LeaseHeldError, match=first) as info:
        claim_job(s, second, "w2", 60)
    assert info.value.holder_job_id == first
    assert _job(second)["status"] == "queued", "a refused claim changes nothing"
    # After the first lease expires (dead worker), the second may run.
    later = utcnow() + timedelta(seconds=61)
    with session_scope(write=True) as s:
        assert claim_job(s, second, "w2", 60, now=later) is not None


def test_sync_jobs_do_not_take_the_org_lease(org):
    c, s1 = _new(), _new("sync")
    with session_scope(write=True) as s:
        claim_job(s, c, "w1", 60)
    with session_scope(write=True) as s:
        assert claim_job(s, s1, "w2", 60) is not None


def test_duplicate_delivery_is_skipped_and_finished_jobs_never_rerun(org):
    job = _new()
    with session_scope(write=True) as s:
        claim_job(s, job, "w1", 60)
    with session_scope(write=True) as s:
        assert claim_job(s, job, "w2", 60) is None, "another worker holds a live lease"
    assert run_job(job, lambda ctx: {}, owner="w3", settings=FAST).status == "skipped"


def test_renew_detects_cancel_and_takeover(org):
    job = _new()
    with session_scope(write=True) as s:
        claim_job(s, job, "w1", 60)
    with session_scope(write=True) as s:
        renew_lease(s, job, "w1", 60)
    with session_scope(write=True) as s:  # w1 stalled past its lease; w2 took over
        claim_job(s, job, "w2", 60, now=utcnow() + timedelta(seconds=120))
    with session_scope(write=True) as s, pytest.raises(LeaseLostError, match="w2"):
        renew_lease(s, job, "w1", 60)
    with session_scope(write=True) as s:
        cancel_job(s, job, actor="test")
    with session_scope(write=True) as s, pytest.raises(JobCancelled):
        renew_lease(s, job, "w2", 60)


def test_run_job_success_records_result_progress_and_releases(org):
    job = _new()

    def handler(ctx):
        ctx.progress(0.5, "half way")
        return {"checkpoint": "ck_1"}

    out = run_job(job, handler, owner="w1", settings=FAST)
    assert out.status == "succeeded"
    shown = _job(job)
    assert shown["status"] == "succeeded" and shown["result"] == {"checkpoint": "ck_1"}
    assert shown["progress"] == 1.0 and shown["lease_owner"] is None
    assert any(e["message"] == "half way" for e in shown["events"])


def test_transient_error_retries_then_fails(org):
    job = _new()

    def unreachable(ctx):
        raise StoreUnavailableError("object store s3://b at http://127.0.0.1:9 is unreachable")

    first = run_job(job, unreachable, owner="w1", settings=FAST)
    assert first.status == "retry" and first.retry_in == 1.0
    assert _job(job)["status"] == "queued" and "unreachable" in _job(job)["error"]
    second = run_job(job, unreachable, owner="w1", settings=FAST)
    assert second.status == "failed", "max_attempts=2 reached"
    shown = _job(job)
    assert shown["status"] == "failed" and shown["attempts"] == 2 and shown["lease_owner"] is None
    with session_scope(write=True) as s:
        requeue_failed(s, job, actor="test")
    assert run_job(job, lambda ctx: {"ok": True}, owner="w1", settings=FAST).status == "succeeded"


def test_bad_input_error_fails_without_retry(org):
    job = _new()

    def broken(ctx):
        raise ValueError("chunk 7 has no text")

    out = run_job(job, broken, owner="w1", settings=FAST)
    assert out.status == "failed" and out.retry_in is None
    shown = _job(job)
    assert shown["error"] == "chunk 7 has no text"
    assert "traceback" in shown["events"][-1]["data"]


def test_busy_org_makes_second_job_wait(org):
    first, second = _new(), _new()
    with session_scope(write=True) as s:
        claim_job(s, first, "w1", 60)
    out = run_job(second, lambda ctx: {}, owner="w2", settings=FAST)
    assert out.status == "waiting" and out.retry_in == 0.5 and first in out.error


def test_cancel_running_job_stops_it_before_commit(org):
    job = _new()
    started, committed = threading.Event(), []

    def slow(ctx):
        started.set()
        for _ in range(100):
            time.sleep(0.05)
            ctx.progress(0.1)
        committed.append(True)
        return {}

    def cancel_soon():
        started.wait(5)
        with session_scope(write=True) as s:
            cancel_job(s, job, actor="test")

    t = threading.Thread(target=cancel_soon)
    t.start()
    out = run_job(job, slow, owner="w1", settings=FAST)
    t.join()
    assert out.status == "cancelled" and not committed
    shown = _job(job)
    assert shown["status"] == "cancelled" and shown["lease_owner"] is None
    with session_scope(write=True) as s, pytest.raises(ConflictError, match="already cancelled"):
        cancel_job(s, job, actor="test")


def test_heartbeat_keeps_lease_alive_beyond_its_ttl(org):
    job, other = _new(), _new()

    def longer_than_lease(ctx):
        time.sleep(FAST.lease_seconds * 1.5)
        with session_scope(write=True) as s:
            with pytest.raises(LeaseHeldError):
                claim_job(s, other, "w2", 60)
        return {}

    assert run_job(job, longer_than_lease, owner="w1", settings=FAST).status == "succeeded"


def test_recover_stale_jobs(org):
    job, done = _new(), _new("sync")
    with session_scope(write=True) as s:
        claim_job(s, job, "dead-worker", 1)
    run_job(done, lambda ctx: {}, owner="w", settings=FAST)
    with session_scope(write=True) as s:
        assert recover_stale_jobs(s, max_attempts=3) == [], "lease still live"
    later = utcnow() + timedelta(seconds=5)
    with session_scope(write=True) as s:
        assert recover_stale_jobs(s, max_attempts=3, now=later) == [job]
    shown = _job(job)
    assert shown["status"] == "queued" and shown["lease_owner"] is None
    assert "dead-worker" in shown["events"][-1]["message"]
    # Out of attempts: failed for good, not re-queued.
    with session_scope(write=True) as s:
        claim_job(s, job, "dead-again", 1)
    with session_scope(write=True) as s:
        assert recover_stale_jobs(s, max_attempts=2, now=utcnow() + timedelta(seconds=5)) == []
    assert _job(job)["status"] == "failed" and "gave up after 2 attempts" in _job(job)["error"]
