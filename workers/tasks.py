"""Celery tasks: thin wrappers that run a job through ``orgmem.jobs.run_job`` and act on its outcome.

A task's only argument is the job id; everything else is in the job row. The outcome decides
what the queue does: re-send later (transient error, or the org is busy), nothing (done, failed,
cancelled, or a duplicate delivery), and after a sync, start the consolidation it was asked for.
"""

from __future__ import annotations

import logging

from celery import Task, shared_task

from orgmem.db.enums import JobKind
from orgmem.db.models import Org
from orgmem.db.session import session_scope
from orgmem.errors import OrgmemError
from orgmem.jobs import Outcome, add_event, get_job, run_job, worker_name
from workers.app import CONSOLIDATE_TASK, SYNC_TASK

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
    """After a finished sync that asked for it, start the org's consolidation (even if some sources
    failed: what was synced is pending and worth consolidating)."""
    if outcome.status not in ("succeeded", "failed"):
        return
    with session_scope() as session:
        job = get_job(session, job_id)
        wanted = job.kind == JobKind.SYNC.value and job.params.get("then_consolidate")
        org = session.get(Org, job.org_id) if job.org_id is not None else None
        actor = job.params.get("actor", "scheduler")
        slug = org.slug if org else None
    if not wanted or slug is None:
        return
    from workers.enqueue import create_consolidation, run_inline, send

    try:
        next_id = create_consolidation(slug, actor=actor, params={"after_sync": job_id})
    except OrgmemError as exc:
        message, next_id = f"consolidation not started: {exc}", None
    else:
        message = f"consolidation job {next_id} queued after sync"
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
