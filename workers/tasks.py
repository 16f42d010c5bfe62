"""Celery tasks: thin wrappers that run a job through ``orgmem.jobs.run_job`` and act on its outcome.

A task's only argument is the job id; everything else is in the job row. The outcome decides
what the queue does: re-send later (transient error, or the org is busy), nothing (done, failed,
cancelled, or a duplicate delivery), and after a sync or a nightly consolidation, start the next
job of the nightly chain (``workers.nightly``).
"""

from __future__ import annotations

import logging

from celery import Task, shared_task

from orgmem.db.models import Org
from orgmem.db.session import session_scope
from orgmem.errors import OrgmemError
from orgmem.jobs import Outcome, add_event, get_job, run_job, worker_name
from workers.app import CONSOLIDATE_TASK, SYNC_TASK
from workers.nightly import after_sync, next_group

logger = logging.getLogger(__name__)

TASK_OPTIONS = {"bind": True, "acks_late": True, "reject_on_worker_lost": True, "max_retries": None}


def _run(task: Task, job_id: str) -> dict:
    from workers.handlers import dispatch  # imports torch lazily, in the process that runs the job

    outcome = run_job(job_id, dispatch, owner=worker_name((task.request.id or "")[:8]))
    follow_up(job_id, outcome)
    if outcome.retry_in is not None:
        raise task.retry(countdown=outcome.retry_in)
    return {"job_id": job_id, "status": outcome.status}


def follow_up(job_id: str, outcome: Outcome, *, inline: bool = False) -> None:
    """After a finished job, start what it chains to (``workers.nightly``): a sync that asked for it
    starts the org's consolidation (even if some sources failed: what was synced is pending and
    worth consolidating); a nightly consolidation starts the next group with pending chunks."""
    if outcome.status not in ("succeeded", "failed"):
        return
    with session_scope() as session:
        job = get_job(session, job_id)
        params = after_sync(job) or next_group(session, job)
        org = session.get(Org, job.org_id) if job.org_id is not None else None
        actor = job.params.get("actor", "scheduler")
        slug, kind = (org.slug if org else None), job.kind
    if params is None or slug is None:
        return
    from workers.enqueue import create_consolidation, run_inline, send

    what = "consolidation" if "audience" not in params else f"group {params['audience']!r} consolidation"
    try:
        next_id = create_consolidation(slug, actor=actor, params=params)
    except OrgmemError as exc:
        message, next_id = f"{what} not started: {exc}", None
    else:
        message = f"{what} job {next_id} queued after {kind}"
    with session_scope(write=True) as session:
        add_event(session, job_id, message, data={"next_job": next_id})
    if next_id is not None:
        run_inline(next_id) if inline else send(next_id)


@shared_task(name=SYNC_TASK, **TASK_OPTIONS)
def sync_task(self: Task, job_id: str) -> dict:
    """Sync an org's sources (queue ``ingest``)."""
    return _run(self, job_id)


@shared_task(name=CONSOLIDATE_TASK, **TASK_OPTIONS)
def consolidate_task(self: Task, job_id: str) -> dict:
    """Consolidate an org's pending chunks into a new checkpoint and gate it (queue ``consolidate``)."""
    return _run(self, job_id)
