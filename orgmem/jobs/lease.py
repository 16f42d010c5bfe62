"""Leases on job rows: who runs a job, until when, and at most one consolidation per org.

A worker *claims* a job by writing its name and an expiry into the job row, and renews the expiry
from a heartbeat while it works. A worker that dies (kill -9, lost node) stops renewing, so its
lease expires and the job can be claimed again (see ``recovery``). For consolidation the lease is
also the per-org lock: a claim is refused while another consolidation job of the same org holds
a live lease. Claims run in one write transaction that locks the org row (PostgreSQL) or takes
SQLite's write lock, so two workers can never both win. The lease records the holding process
(``holder``); a holder on this machine that died frees the org at once (``orphans``), and the
refusal names the holder and how to free the org by hand (``orgmem jobs cancel``).
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
from orgmem.jobs.holder import Holder, clear, holder_of, is_gone, lease_text, stamp, this_process
from orgmem.jobs.orphans import release_if_gone
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


def live_org_holder(
    session: Session, org_id: int, *, exclude_job_id: str | None = None, now: datetime | None = None
) -> Job | None:
    """Like ``org_lease_holder``, but first releases leases whose holder died on this machine.

    Call inside a write transaction that locks the org row, so only one caller releases them.
    """
    now = now or utcnow()
    while True:
        holder = org_lease_holder(session, org_id, exclude_job_id=exclude_job_id, now=now)
        if holder is None or not release_if_gone(session, holder, now=now):
            return holder
        session.flush()


def held_message(org_slug: str, holder: Job, waiting_job_id: str | None = None) -> str:
    """What holds the org and how to free it, for every refusal of a busy org."""
    waits = (
        f"job {waiting_job_id!r} cannot start until it ends or its lease expires; " if waiting_job_id else ""
    )
    return (
        f"org {org_slug!r} is being consolidated by job {holder.id!r} ({lease_text(holder)}); {waits}"
        f"if that job is stuck, free the org with `orgmem jobs cancel {holder.id}`"
    )


def _check_org_lease(session: Session, job: Job, now: datetime) -> None:
    if job.kind != JobKind.CONSOLIDATE.value or job.org_id is None:
        return
    org = session.get(Org, job.org_id, with_for_update=True)  # serialises claims of one org on PostgreSQL
    holder = live_org_holder(session, job.org_id, exclude_job_id=job.id, now=now)
    if holder is not None:
        raise LeaseHeldError(
            held_message(org.slug if org else str(job.org_id), holder, job.id),
            holder.id,
            holder.lease_expires_at,
        )


def claim_job(
    session: Session,
    job_id: str,
    owner: str,
    ttl: float,
    *,
    now: datetime | None = None,
    holder: Holder | None = None,
) -> Claim | None:
    """Take job ``job_id`` for ``owner`` for ``ttl`` seconds, recorded as held by ``holder``
    (default: this process).

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
        gone = holder_of(job)
        if gone is None or not is_gone(gone):
            session.commit()
            logger.info("job is held by another worker", extra={"job": job_id, "holder": job.lease_owner})
            return None
        add_event(
            session,
            job,
            f"holder process {gone.pid} on {gone.host} is gone; worker {owner} takes the job over",
            level="warning",
        )
    _check_org_lease(session, job, now)
    holder = holder or this_process()
    job.status = JobStatus.RUNNING.value
    stamp(job, owner, holder)
    job.lease_expires_at = now + timedelta(seconds=ttl)
    job.attempts = (job.attempts or 0) + 1
    job.started_at = job.started_at or now
    job.error = None
    add_event(
        session,
        job,
        f"attempt {job.attempts} started",
        data={"worker": owner, "host": holder.host, "pid": holder.pid},
    )
    claim = Claim(job.id, owner, job.attempts, job.kind, job.org_id, dict(job.params or {}))
    session.commit()
    logger.info(
        "job claimed",
        extra={
            "job": job_id,
            "org_id": claim.org_id,
            "worker": owner,
            "attempt": claim.attempt,
            "holder": holder.describe(),
        },
    )
    return claim


def renew_lease(
    session: Session, job_id: str, owner: str, ttl: float, *, now: datetime | None = None
) -> None:
    """Extend ``owner``'s lease (heartbeat). Raises JobCancelled or LeaseLostError. Commits."""
    now = now or utcnow()
    begin_write(session)
    job = get_job(session, job_id, for_update=True)
    holds_lease(job, owner)  # raising leaves the row as it was (the caller rolls back)
    job.lease_expires_at = now + timedelta(seconds=ttl)
    session.commit()


def holds_lease(job: Job, owner: str) -> None:
    """Raise JobCancelled (cancel frees the lease at once) or LeaseLostError unless ``owner`` still
    runs ``job``; callers hold the job row (``for_update``)."""
    if job.status == JobStatus.CANCELLED.value:
        raise JobCancelled(f"job {job.id!r} was cancelled")
    if job.lease_owner != owner:
        raise LeaseLostError(
            f"worker {owner} lost the lease on job {job.id!r} (now held by {job.lease_owner or 'nobody'})"
        )


def guard_commit(session: Session, job_id: str, owner: str) -> None:
    """Lock the job row in ``session``'s transaction and check ``owner`` still runs it: a job's
    results commit in that transaction, so a cancel or a takeover can never land in between."""
    begin_write(session)
    holds_lease(get_job(session, job_id, for_update=True), owner)


def release_lease(session: Session, job_id: str, owner: str) -> bool:
    """Drop ``owner``'s lease (no-op if it was taken over meanwhile). Commits."""
    begin_write(session)
    job = get_job(session, job_id, for_update=True)
    released = job.lease_owner == owner
    if released:
        clear(job)
    session.commit()
    return released
