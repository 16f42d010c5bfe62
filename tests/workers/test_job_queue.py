"""The job-queue interface: what a process without a queue says, and that the ops functions send
committed jobs through whatever queue is installed (here a fake that only records)."""

from __future__ import annotations

import pytest

import orgmem.jobs.queue as queue_module
from orgmem.db import session_scope
from orgmem.errors import OrgmemError
from orgmem.jobs import get_job, install_job_queue, job_queue
from orgmem.ops.jobs import cancel, retry, submit_consolidation, submit_sync


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, float | None]] = []

    def send(self, job_id: str, *, countdown: float | None = None) -> str:
        with session_scope() as session:
            assert get_job(session, job_id).status == "queued", "a job is committed before it is sent"
        self.sent.append((job_id, countdown))
        return f"task-{len(self.sent)}"


@pytest.fixture
def recorder(monkeypatch):
    monkeypatch.setattr(queue_module, "_installed", None)
    fake = Recorder()
    install_job_queue(fake)
    return fake


def test_a_process_without_a_queue_says_so(monkeypatch, org):
    monkeypatch.setattr(queue_module, "_installed", None)
    with pytest.raises(OrgmemError, match="no job queue is configured in this process"):
        job_queue()
    with pytest.raises(OrgmemError, match="no job queue is configured"):
        submit_sync(org, actor="test")


def test_submit_cancel_and_retry_go_through_the_installed_queue(recorder, org):
    sync = submit_sync(org, actor="test", source="docs")
    consolidation = submit_consolidation(org, actor="test", params={"engine": {"epochs": 1}})
    assert recorder.sent == [(sync, None), (consolidation, None)]
    with session_scope(write=True) as session:
        done = cancel(session, consolidation, actor="test")
    assert done.job["status"] == "cancelled" and done.released is None
    view = retry(consolidation, actor="test")
    assert view["status"] == "queued" and recorder.sent[-1] == (consolidation, None)
    with session_scope() as session:
        assert get_job(session, sync).params == {"actor": "test", "then_consolidate": False, "source": "docs"}
