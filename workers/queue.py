"""``CeleryJobQueue``: orgmem's job queue (``orgmem.jobs.queue.JobQueue``) on Celery.

A job leaves the process as a Celery message naming its task and carrying only the job id; the
task id is recorded on the job. The CLI, the API app and the worker processes install this queue
(``install_celery_queue``); Celery itself is imported on the first send, so a CLI command that
queues nothing never pays for it.
"""

from __future__ import annotations

import logging

from orgmem.db.session import session_scope
from orgmem.errors import ConflictError, OrgmemError
from orgmem.jobs import FINISHED, get_job, install_job_queue
from workers.names import TASK_FOR_KIND

logger = logging.getLogger(__name__)


class CeleryJobQueue:
    """Sends jobs to the workers through the configured broker (``workers.app.get_app``)."""

    def send(self, job_id: str, *, countdown: float | None = None) -> str:
        """Put the job's message on its queue; returns the Celery task id (recorded on the job)."""
        from workers.app import get_app

        with session_scope() as session:
            job = get_job(session, job_id)
            if job.status in FINISHED:
                raise ConflictError(f"job {job_id!r} is already {job.status}; not sending it again")
            task = TASK_FOR_KIND.get(job.kind)
        if task is None:
            raise OrgmemError(f"job {job_id!r} is of kind {job.kind!r}, which no worker task runs")
        result = get_app().send_task(task, args=[job_id], countdown=countdown)
        with session_scope(write=True) as session:
            get_job(session, job_id).celery_task_id = result.id
        logger.info("job sent", extra={"job": job_id, "task": task, "countdown": countdown})
        return result.id


def install_celery_queue() -> CeleryJobQueue:
    """Make Celery this process's job queue (the composition roots call this once)."""
    queue = CeleryJobQueue()
    install_job_queue(queue)
    return queue
