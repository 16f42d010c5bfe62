"""Status transitions of a job after it was claimed: succeed, fail, retry later, cancel, recover.

queued → running (``lease.claim_job``) → succeeded | failed | cancelled; a running job whose
worker died (lease expired) goes back to queued through ``recover_stale_jobs``, and a failed job
can be re-queued on request (``requeue_failed``). Every transition writes a job event.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orgmem.db.enums import JobStatus
from orgmem.db.models import Job
from orgmem.db.session import begin_write
from orgmem.db.types import utcnow
from orgmem.errors import ConflictError
from orgmem.jobs.holder import clear, lease_text
from orgmem.jobs.records import FINISHED, add_event, get_job

logger = logging.getLogger(__name__)


def _release(job: Job) -> None:
    clear(job)


def finish_job(session: Session, job_id: str, owner: str, result: dict[str, Any]) -> Job:
    """Record success. A cancel that arrived after the work was committed is noted, not applied."""
    begin_write(session)
    job = get_job(session, job_id, for_update=True)
    if job.status == JobStatus.CANCELLED.value:
        add_event(session, job, "cancel arrived after the work was committed; result kept", level="warning")
    job.status = JobStatus.SUCCEEDED.value
    job.progress = 1.0
    job.result = result
    job.finished_at = utcnow()
    if job.lease_owner == owner:
        _release(job)
    add_event(session, job, "succeeded", data={"result": result})
    session.commit()
    logger.info("job succeeded", extra={"job": job_id})
    return job


def fail_job(
    session: Session, job_id: str, owner: str | None, error: str, *, details: dict[str, Any] | None = None
) -> Job:
    """Record a final failure with its error message (``orgmem jobs retry`` can run it again)."""
    begin_write(session)
    job = get_job(session, job_id, for_update=True)
    job.status = JobStatus.FAILED.value
    job.error = error
    job.finished_at = utcnow()
    if owner is None or job.lease_owner == owner:
        _release(job)
    add_event(session, job, f"failed: {error}", level="error", data=details or {})
    session.commit()
    logger.warning("job failed", extra={"job": job_id, "error": error})
    return job


def schedule_retry(session: Session, job_id: str, owner: str, error: str, delay: float) -> Job:
    """Put a job whose attempt hit a transient error back in the queue (the caller re-sends it)."""
    begin_write(session)
    job = get_job(session, job_id, for_update=True)
    job.status = JobStatus.QUEUED.value
    job.error = error
    if job.lease_owner == owner:
        _release(job)
    add_event(
        session, job, f"attempt {job.attempts} failed, retrying in {delay:.0f} s: {error}", level="warning"
    )
    session.commit()
    logger.warning("job will be retried", extra={"job": job_id, "error": error, "delay": delay})
    return job


def mark_cancelled(session: Session, job_id: str, owner: str) -> Job:
    """The worker stopped a cancelled job: release its lease and close it."""
    begin_write(session)
    job = get_job(session, job_id, for_update=True)
    job.status = JobStatus.CANCELLED.value
    job.finished_at = job.finished_at or utcnow()
    job.error = job.error or f"cancelled; worker {owner} stopped before committing"
    if job.lease_owner == owner:
        _release(job)
    add_event(session, job, f"stopped by worker {owner} after cancel; nothing committed", level="warning")
    session.commit()
    return job


def cancel_job(session: Session, job_id: str, *, actor: str, reason: str | None = None) -> Job:
    """Cancel a job and free its org at once. Commits.

    A queued job simply never runs. A running (or orphaned) job's lease is released here, so the
    org can be consolidated again right away; a worker that is still alive notices the cancel at
    its next check or heartbeat and stops, and its results can no longer commit (``guard_commit``).
    ``reason`` (default: who cancelled, and when) becomes the job's error.
    """
    begin_write(session)
    job = get_job(session, job_id, for_update=True)
    if job.status in FINISHED:
        session.commit()
        raise ConflictError(f"job {job_id!r} is already {job.status}; nothing to cancel")
    was_running = job.status == JobStatus.RUNNING.value
    held = lease_text(job) if job.lease_owner is not None else None
    job.status = JobStatus.CANCELLED.value
    job.finished_at = utcnow()
    if was_running:
        job.error = reason or f"cancelled by {actor} while running ({held or 'no lease'})"
        message = (
            f"cancel requested by {actor}; lease released ({held or 'none held'}); "
            "a worker still running it stops before committing"
        )
    else:
        job.error = reason or f"cancelled by {actor} before it started"
        message = f"cancelled by {actor} before it started" + (f": {reason}" if reason else "")
    _release(job)
    add_event(session, job, message, level="warning")
    session.commit()
    logger.info(
        "job cancelled",
        extra={"job": job_id, "org_id": job.org_id, "actor": actor, "was_running": was_running, "held": held},
    )
    return job


def requeue_failed(session: Session, job_id: str, *, actor: str) -> Job:
    """Make a failed or cancelled job runnable again (same id, attempts counted afresh). Commits."""
    begin_write(session)
    job = get_job(session, job_id, for_update=True)
    if job.status not in (JobStatus.FAILED.value, JobStatus.CANCELLED.value):
        session.commit()
        raise ConflictError(f"job {job_id!r} is {job.status}; only failed or cancelled jobs can be retried")
    job.status = JobStatus.QUEUED.value
    job.attempts = 0
    job.finished_at = None
    _release(job)
    add_event(session, job, f"re-queued by {actor} (was: {job.error or 'cancelled'})")
    session.commit()
    return job


def recover_stale_jobs(session: Session, max_attempts: int, *, now: datetime | None = None) -> list[str]:
    """Running jobs whose lease expired (dead worker): back to queued, or failed after max attempts.

    Returns the ids to re-send to the queue. Commits.
    """
    now = now or utcnow()
    begin_write(session)
    stale = list(
        session.scalars(
            select(Job)
            .where(Job.status == JobStatus.RUNNING.value, Job.lease_expires_at < now)
            .with_for_update()
        )
    )
    requeue: list[str] = []
    for job in stale:
        holder = job.lease_owner
        _release(job)
        if (job.attempts or 0) >= max_attempts:
            job.status = JobStatus.FAILED.value
            job.error = f"worker {holder} stopped renewing its lease; gave up after {job.attempts} attempts"
            job.finished_at = now
            add_event(session, job, job.error, level="error")
        else:
            job.status = JobStatus.QUEUED.value
            add_event(session, job, f"lease of worker {holder} expired; job re-queued", level="warning")
            requeue.append(job.id)
    # A cancelled job whose worker died never gets its lease released by the worker.
    for job in session.scalars(
        select(Job).where(
            Job.status == JobStatus.CANCELLED.value, Job.lease_owner.is_not(None), Job.lease_expires_at < now
        )
    ):
        _release(job)
        job.finished_at = job.finished_at or now
    session.commit()
    if stale:
        logger.warning("recovered stale jobs", extra={"requeued": requeue, "stale": [j.id for j in stale]})
    return requeue
