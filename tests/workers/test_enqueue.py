"""Creating and running jobs without a worker: refusal of a second consolidation, inline runs,
the nightly chain (sync, then consolidate), and the worker's command line."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from orgmem.db import session_scope
from orgmem.errors import ConflictError, OrgmemError
from orgmem.jobs import list_jobs
from orgmem.lineage import get_org
from orgmem.ops.jobs import create_consolidation, create_sync, run_inline
from tests.pipeline.conftest import FAST_PARAMS, NIGHT1, add_chunks
from workers.worker import parse_queues, worker_argv


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setenv("ORGMEM_BASE_MODEL", "tiny-random")
    from orgmem.config import get_settings

    get_settings.cache_clear()


def test_second_consolidation_is_refused_with_the_running_one_named(org):
    first = create_consolidation(org, actor="test")
    with pytest.raises(ConflictError, match=f"already has consolidation job '{first}' \\(queued\\)"):
        create_consolidation(org, actor="test")
    create_sync(org, actor="test")  # syncs are not limited


def test_inline_consolidation_and_nothing_to_do(tiny, org):
    add_chunks(org, NIGHT1)
    job = create_consolidation(org, actor="test", params=FAST_PARAMS)
    out = run_inline(job)
    assert out.status == "succeeded" and out.result["status"] == "promoted"
    again = run_inline(create_consolidation(org, actor="test", params=FAST_PARAMS))
    assert again.result["status"] == "nothing_to_do"


def test_nightly_chain_sync_then_consolidate(tiny, org, tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "runbook.md").write_text(
        "# Heron\n\nHeron listens on port 7415 and keeps its route cache in Redis database 3. Routes older "
        "than 45 minutes are stale; restart the cache warmer with heronctl warm --all.\n"
    )
    from orgmem.ingest import add_source

    with session_scope(write=True) as s:
        add_source(s, get_org(s, org), "docs", "docs", {"path": str(docs)}, actor="test")
    monkeypatch.setenv("ORGMEM_PIPELINE_ENGINE", '{"epochs": 1, "max_steps": 3, "num_threads": 1}')
    monkeypatch.setenv("ORGMEM_PIPELINE_OPTIONS", '{"new_probes": 4, "old_probes": 4, "progress": false}')
    sync = create_sync(org, actor="scheduler", then_consolidate=True)
    assert run_inline(sync).status == "succeeded"
    with session_scope() as s:
        jobs = {j.kind: j for j in list_jobs(s, get_org(s, org))}
        assert jobs["sync"].result["chunks_added"] >= 1
        assert jobs["consolidate"].status == "succeeded", jobs["consolidate"].error
        assert jobs["consolidate"].params["after_sync"] == sync
        assert jobs["consolidate"].result["status"] == "promoted"


def test_worker_command_line():
    assert parse_queues("ingest, consolidate") == ["ingest", "consolidate"]
    with pytest.raises(OrgmemError, match=r"unknown queue\(s\) \['gpu'\]"):
        parse_queues("ingest,gpu")
    argv = worker_argv(["consolidate"])
    assert argv[argv.index("--pool") + 1] == "solo", "one task at a time in the worker process"
    assert argv[argv.index("-Q") + 1] == "consolidate"
    assert worker_argv(["ingest"], concurrency=4)[-2:] == ["--concurrency", "4"]
    with pytest.raises(OrgmemError, match="concurrency 1"):
        worker_argv(["consolidate"], pool="prefork", concurrency=2)


def test_retry_on_a_differently_configured_worker_makes_no_second_checkpoint(tiny, org, monkeypatch):
    import orgmem.pipeline.run as run
    from orgmem.db.models import Checkpoint
    from orgmem.jobs import get_job, requeue_failed

    add_chunks(org, NIGHT1)
    monkeypatch.setenv("ORGMEM_PIPELINE_ENGINE", '{"epochs": 1, "max_steps": 2, "num_threads": 1}')
    monkeypatch.setenv("ORGMEM_PIPELINE_OPTIONS", '{"new_probes": 2, "old_probes": 2, "progress": false}')
    real_apply = run.apply_decision

    def killed_before_gate(*args, **kwargs):
        raise RuntimeError("worker died between commit and gate")

    monkeypatch.setattr(run, "apply_decision", killed_before_gate)
    job = create_consolidation(org, actor="test")
    assert run_inline(job).status == "failed"
    monkeypatch.setattr(run, "apply_decision", real_apply)
    monkeypatch.setenv("ORGMEM_PIPELINE_ENGINE", '{"epochs": 3, "max_steps": 5, "num_threads": 1}')
    with session_scope(write=True) as s:
        assert get_job(s, job).params["engine"]["max_steps"] == 2, "the first attempt's recipe is frozen"
        requeue_failed(s, job, actor="test")
    out = run_inline(job)
    assert out.status == "succeeded" and out.result["status"] == "promoted" and out.result["created"] is False
    with session_scope() as s:
        assert len(list(s.scalars(select(Checkpoint.id)))) == 1
