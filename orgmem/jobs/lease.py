"""Leases on job rows: who runs a job, until when, and at most one consolidation per org.

A worker *claims* a job by writing its name and an expiry into the job row, and renews the expiry
from a heartbeat while it works. A worker that dies (kill -9, lost node) stops renewing, so its
lease expires and the job can be claimed again (see ``recovery``). For consolidation the lease is
also the per-org lock: a claim is refused while another consolidation job of the same org holds
a live lease. Claims run in one write transaction that locks the org row (PostgreSQL) or takes
SQLite's write lock, so two workers can never both win.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from orgmem.db.enums import JobKind, JobStatus
from orgmem.db.models import Job, Org
from orgmem.db.session import begin_write
from orgmem.db.types import utcnow
from orgmem.errors import ConflictError, OrgmemError
from orgmem.jobs.records import FINISHED, add_event, get_job

logger = logging.getLogger(__name__)


class LeaseHeldError(ConflictError):
    """Another job holds the org's consolidation lease; the message names it and its expiry."""

    def __init__(self, message: str, holder_job_id: str, expires_at: datetime | None) -> None:
        super().__init__(message)
        self.holder_job_id = holder_job_id
        self.expires_at = expires_at


class LeaseLostError(OrgmemError):
    """This worker's lease on a job was taken over (it expired while the worker was stalled)."""


class JobCancelled(OrgmemError):
    """The job was cancelled while it ran; the worker stops before committing anything."""


@dataclass(frozen=True)
class Claim:
    """A live claim: the worker ``owner`` runs attempt ``attempt`` of job ``job_id``."""

    job_id: str
    owner: str
    attempt: int
    kind: str
    org_id: int | None
    params: dict


def _live(job: Job, now: datetime) -> bool:
    return job.lease_owner is not None and job.lease_expires_at is not None and job.lease_expires_at > now


def org_lease_holder(
    session: Session, org_id: int, *, exclude_job_id: str | None = None, now: datetime | None = None
) -> Job | None:
    """The consolidation job of ``org_id`` holding a live lease, if any."""
    now = now or utcnow()
    query = select(Job).where(
        Job.org_id == org_id,
        Job.kind == JobKind.CONSOLIDATE.value,
        Job.lease_owner.is_not(None),
        Job.lease_expires_at > now,
    )
    if exclude_job_id is not None:
        query = query.where(Job.id != exclude_job_id)
    return session.scalars(query.order_by(Job.lease_expires_at.desc())).first()


def _check_org_lease(session: Session, job: Job, now: datetime) -> None:
    if job.kind != JobKind.CONSOLIDATE.value or job.org_id is None:
        return
    session.get(Org, job.org_id, with_for_update=True)  # serialises claims of one org on PostgreSQL
    holder = org_lease_holder(session, job.org_id, exclude_job_id=job.id, now=now)
    if holder is not None:
        org = session.get(Org, job.org_id)
        raise LeaseHeldError(
            f"org {org.slug if org else job.org_id!r} is being consolidated by job {holder.id!r} "
            f"(worker {holder.lease_owner}, lease until {holder.lease_expires_at.isoformat()}); "
            f"job {job.id!r} waits for it to finish or its lease to expire",
            holder.id,
            holder.lease_expires_at,
        )


def claim_job(
    session: Session, job_id: str, owner: str, ttl: float, *, now: datetime | None = None
) -> Claim | None:
    """Take job ``job_id`` for ``owner`` for ``ttl`` seconds.

    Returns None when there is nothing to do: the job is finished or cancelled, or another worker
    holds a live lease on it (a duplicate delivery). Raises LeaseHeldError when another
    consolidation of the same org is running. Commits.
    """
    now = now or utcnow()
    begin_write(session)
    job = get_job(session, job_id, for_update=True)
    if job.status in FINISHED:
        session.commit()
        logger.info("job already finished, nothing to do", extra={"job": job_id, "status": job.status})
        return None
    if _live(job, now) and job.lease_owner != owner:
        session.commit()
        logger.info("job is held by another worker", extra={"job": job_id, "holder": job.lease_owner})
        return None
    _check_org_lease(session, job, now)
    job.status = JobStatus.RUNNING.value
    job.lease_owner = owner
    job.lease_expires_at = now + timedelta(seconds=ttl)
    job.attempts = (job.attempts or 0) + 1
    job.started_at = job.started_at or now
    job.error = None
    add_event(session, job, f"attempt {job.attempts} started", data={"worker": owner})
    claim = Claim(job.id, owner, job.attempts, job.kind, job.org_id, dict(job.params or {}))
    session.commit()
    logger.info("job claimed", extra={"job": job_id, "worker": owner, "attempt": claim.attempt})
    return claim


def renew_lease(
    session: Session, job_id: str, owner: str, ttl: float, *, now: datetime | None = None
) -> None:
    """Extend ``owner``'s lease (heartbeat). Raises JobCancelled or LeaseLostError. Commits."""
    now = now or utcnow()
    begin_write(session)
    job = get_job(session, job_id, for_update=True)
    if job.lease_owner != owner:
        session.commit()
        raise LeaseLostError(
            f"worker {owner} lost the lease on job {job_id!r} (now held by {job.lease_owner or 'nobody'})"
        )
    cancelled = job.status == JobStatus.CANCELLED.value
    job.lease_expires_at = now + timedelta(seconds=ttl)
    session.commit()
    if cancelled:
        raise JobCancelled(f"job {job_id!r} was cancelled")


def release_lease(session: Session, job_id: str, owner: str) -> bool:
    """Drop ``owner``'s lease (no-op if it was taken over meanwhile). Commits."""
    begin_write(session)
    job = get_job(session, job_id, for_update=True)
    released = job.lease_owner == owner
    if released:
        job.lease_owner = None
        job.lease_expires_at = None
    session.commit()
    return released
