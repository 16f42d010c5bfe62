"""Job rows and their event log: create, look up, list, record progress and events.

The jobs table is the source of truth for what a background job is doing (Celery's own result
state is not kept): the CLI, the API and the scheduler all read it. Functions take a session and
flush; callers decide when to commit.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orgmem.db.enums import JobKind, JobStatus
from orgmem.db.models import Job, JobEvent, Org
from orgmem.db.types import new_id, utcnow
from orgmem.errors import NotFoundError, OrgmemError

logger = logging.getLogger(__name__)

FINISHED = frozenset({JobStatus.SUCCEEDED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value})
ACTIVE = frozenset({JobStatus.QUEUED.value, JobStatus.RUNNING.value})
EVENT_LEVELS = ("debug", "info", "warning", "error")


def create_job(
    session: Session, org: Org | None, kind: JobKind | str, params: dict[str, Any] | None = None
) -> Job:
    """A new queued job (the caller enqueues it once the row is committed)."""
    kind = JobKind(kind).value
    job = Job(
        id=new_id("jb"),
        org_id=org.id if org is not None else None,
        kind=kind,
        status=JobStatus.QUEUED.value,
        progress=0.0,
        params=dict(params or {}),
        attempts=0,
        created_at=utcnow(),
    )
    session.add(job)
    session.flush()
    add_event(session, job, f"{kind} job created", data={"params": job.params})
    logger.info("job created", extra={"job": job.id, "kind": kind, "org": org.slug if org else None})
    return job


def get_job(session: Session, job_id: str, *, for_update: bool = False) -> Job:
    """The job ``job_id`` or NotFoundError naming it."""
    job = session.get(Job, job_id, with_for_update=for_update)
    if job is None:
        raise NotFoundError(f"job {job_id!r} not found (see `orgmem jobs ORG`)")
    return job


def _member(enum: type[JobKind] | type[JobStatus], value: str, what: str):
    """The enum member, or an error naming the choices (not a ValueError: the API answers 400)."""
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(m.value for m in enum)
        raise OrgmemError(f"unknown job {what} {value!r} (one of {choices})") from None


def list_jobs(
    session: Session,
    org: Org | None = None,
    *,
    kind: str | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[Job]:
    """Newest first; filters by org, kind and status when given."""
    query = select(Job)
    if org is not None:
        query = query.where(Job.org_id == org.id)
    if kind is not None:
        query = query.where(Job.kind == _member(JobKind, kind, "kind").value)
    if status is not None:
        query = query.where(Job.status == _member(JobStatus, status, "status").value)
    return list(session.scalars(query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)))


def add_event(
    session: Session, job: Job | str, message: str, *, level: str = "info", data: dict[str, Any] | None = None
) -> JobEvent:
    """Append one line to the job's event log (shown by ``orgmem jobs show``)."""
    if level not in EVENT_LEVELS:
        raise OrgmemError(f"job event level {level!r} is not one of {EVENT_LEVELS}")
    job_id = job if isinstance(job, str) else job.id
    event = JobEvent(job_id=job_id, level=level, message=message, data=dict(data or {}), created_at=utcnow())
    session.add(event)
    session.flush()
    return event


def job_events(session: Session, job: Job) -> list[JobEvent]:
    return list(session.scalars(select(JobEvent).where(JobEvent.job_id == job.id).order_by(JobEvent.id)))


def set_progress(session: Session, job: Job, fraction: float, message: str | None = None) -> None:
    """Progress in [0, 1] (clamped), with an optional event describing the stage reached."""
    job.progress = min(1.0, max(0.0, float(fraction)))
    if message:
        add_event(session, job, message, data={"progress": round(job.progress, 4)})
    session.flush()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def job_dict(session: Session, job: Job, *, events: bool = False) -> dict[str, Any]:
    """The JSON shape of a job for ``orgmem jobs`` / ``orgmem jobs show`` (and the API)."""
    org = session.get(Org, job.org_id) if job.org_id is not None else None
    out: dict[str, Any] = {
        "id": job.id,
        "org": org.slug if org else None,
        "kind": job.kind,
        "status": job.status,
        "progress": round(job.progress or 0.0, 4),
        "attempts": job.attempts,
        "params": job.params,
        "result": job.result,
        # a cancel always says so (rows cancelled before cancels recorded a reason have none)
        "error": job.error or ("cancelled" if job.status == JobStatus.CANCELLED.value else None),
        "lease_owner": job.lease_owner,
        "lease_expires_at": _iso(job.lease_expires_at),
        "lease_host": job.lease_host,
        "lease_pid": job.lease_pid,
        "celery_task_id": job.celery_task_id,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
    }
    if events:
        out["events"] = [
            {"at": _iso(e.created_at), "level": e.level, "message": e.message, "data": e.data}
            for e in job_events(session, job)
        ]
    return out
