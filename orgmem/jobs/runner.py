"""Run one attempt of a job: claim it, heartbeat, call its handler, record the outcome.

Queue-agnostic on purpose: the Celery task and ``--inline`` both call ``run_job`` and act on the
returned ``Outcome`` (a Celery task re-sends itself when ``retry_in`` is set; inline mode just
reports). Errors are classified once here: transient ones (store unreachable, database
connection lost, a data-parallel training rank that died) are retried with exponential backoff
up to ``max_attempts``; anything else fails the job with the error's message, which names what went wrong.
"""

from __future__ import annotations

import logging
import os
import socket
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import OperationalError

from orgmem.db.session import session_scope
from orgmem.errors import DistributedTrainingError, OrgmemError
from orgmem.jobs.context import Heartbeat, JobContext
from orgmem.jobs.lease import JobCancelled, LeaseHeldError, LeaseLostError, claim_job
from orgmem.jobs.lifecycle import fail_job, finish_job, mark_cancelled, schedule_retry
from orgmem.jobs.settings import JobSettings, get_job_settings
from orgmem.store.base import StoreUnavailableError

logger = logging.getLogger(__name__)

Handler = Callable[[JobContext], dict[str, Any]]
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    StoreUnavailableError,
    OperationalError,
    ConnectionError,
    DistributedTrainingError,  # a data-parallel rank died (killed, out of memory): the next try may work
)


class JobFailed(OrgmemError):
    """A handler's own verdict that its job failed, with the details to record (e.g. the partial
    result); not a crash, so the runner records it without a traceback and never retries it."""

    def __init__(self, message: str, *, details: dict[str, Any] | None = None,
                 cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.details, self.cause = details or {}, cause


@dataclass(frozen=True)
class Outcome:
    """What one attempt ended in. ``retry_in``: re-send the job after this many seconds."""

    job_id: str
    status: str  # succeeded | failed | cancelled | skipped | retry | waiting | lost
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    retry_in: float | None = None


def worker_name(suffix: str = "") -> str:
    """``host:pid[:suffix]``: enough to find the process that holds a lease."""
    name = f"{socket.gethostname()}:{os.getpid()}"
    return f"{name}:{suffix}" if suffix else name


def _claim(job_id: str, owner: str, cfg: JobSettings) -> JobContext | Outcome:
    try:
        with session_scope(write=True) as session:
            claim = claim_job(session, job_id, owner, cfg.lease_seconds)
    except LeaseHeldError as exc:
        logger.info("org busy, job waits", extra={"job": job_id, "holder": exc.holder_job_id})
        return Outcome(job_id, "waiting", error=str(exc), retry_in=cfg.lease_wait_seconds)
    if claim is None:
        return Outcome(job_id, "skipped")
    return JobContext(job_id, owner, claim.attempt, claim.kind, claim.org_id, claim.params)


def _failed(ctx: JobContext, exc: BaseException, cfg: JobSettings) -> Outcome:
    error = str(exc) or type(exc).__name__
    with session_scope(write=True) as session:
        if isinstance(exc, JobFailed):
            fail_job(session, ctx.job_id, ctx.owner, error, details=exc.details)
            return Outcome(ctx.job_id, "failed", error=error)
        if isinstance(exc, TRANSIENT_ERRORS) and ctx.attempt < cfg.max_attempts:
            delay = cfg.retry_backoff_seconds * (2 ** (ctx.attempt - 1))
            schedule_retry(session, ctx.job_id, ctx.owner, error, delay)
            return Outcome(ctx.job_id, "retry", error=error, retry_in=delay)
        details = {"type": type(exc).__name__, "attempt": ctx.attempt}
        if not isinstance(exc, OrgmemError):
            details["traceback"] = traceback.format_exc(limit=20)
        fail_job(session, ctx.job_id, ctx.owner, error, details=details)
    return Outcome(ctx.job_id, "failed", error=error)


def run_job(
    job_id: str, handler: Handler, *, owner: str | None = None, settings: JobSettings | None = None
) -> Outcome:
    """Claim ``job_id`` and run ``handler`` on it once; never raises for the job's own errors."""
    cfg = settings or get_job_settings()
    owner = owner or worker_name()
    claimed = _claim(job_id, owner, cfg)
    if isinstance(claimed, Outcome):
        return claimed
    ctx = claimed
    ctx.heartbeat = Heartbeat(job_id, owner, cfg.lease_seconds, cfg.heartbeat_seconds)
    ctx.heartbeat.start()
    try:
        result = handler(ctx)
    except JobCancelled as exc:
        with session_scope(write=True) as session:
            mark_cancelled(session, job_id, owner)
        return Outcome(job_id, "cancelled", error=str(exc))
    except LeaseLostError as exc:  # another worker took over; it owns the job's status now
        logger.warning("lease lost, leaving the job to its new holder", extra={"job": job_id})
        return Outcome(job_id, "lost", error=str(exc))
    except JobFailed as exc:
        return _failed(ctx, exc, cfg)
    except Exception as exc:
        logger.exception("job attempt failed", extra={"job": job_id, "attempt": ctx.attempt})
        return _failed(ctx, exc, cfg)
    finally:
        ctx.heartbeat.stop()
    with session_scope(write=True) as session:
        finish_job(session, job_id, owner, result)
    return Outcome(job_id, "succeeded", result=result)
