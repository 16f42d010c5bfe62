"""Celery tasks: thin wrappers that run a job through ``orgmem.jobs.run_job`` and act on its outcome.

A task's only argument is the job id; everything else is in the job row. The outcome decides
what the queue does: re-send later (transient error, or the org is busy), nothing (done, failed,
cancelled, or a duplicate delivery), and after a sync or a nightly consolidation, start the next
job of the nightly chain (``orgmem.ops.jobs.follow_up``).
"""

from __future__ import annotations

import logging

from celery import Task, shared_task

from orgmem.jobs import run_job, worker_name
from orgmem.ops.jobs import follow_up
from workers.names import CONSOLIDATE_TASK, SYNC_TASK
from workers.queue import CeleryJobQueue

logger = logging.getLogger(__name__)

TASK_OPTIONS = {"bind": True, "acks_late": True, "reject_on_worker_lost": True, "max_retries": None}


def _run(task: Task, job_id: str) -> dict:
    from orgmem.ops.handlers import dispatch  # imports torch lazily, in the process that runs the job

    outcome = run_job(job_id, dispatch, owner=worker_name((task.request.id or "")[:8]))
    follow_up(job_id, outcome, CeleryJobQueue())
    if outcome.retry_in is not None:
        raise task.retry(countdown=outcome.retry_in)
    return {"job_id": job_id, "status": outcome.status}


@shared_task(name=SYNC_TASK, **TASK_OPTIONS)
def sync_task(self: Task, job_id: str) -> dict:
    """Sync an org's sources (queue ``ingest``)."""
    return _run(self, job_id)


@shared_task(name=CONSOLIDATE_TASK, **TASK_OPTIONS)
def consolidate_task(self: Task, job_id: str) -> dict:
    """Consolidate an org's pending chunks into a new checkpoint and gate it (queue ``consolidate``)."""
    return _run(self, job_id)
