"""What a running job's code sees: progress, events, and a cancellation check, plus the heartbeat.

The heartbeat is a daemon thread that renews the job's lease every ``heartbeat_seconds`` on its
own database session, so a long training step never lets the lease lapse while the worker is
alive. When renewal finds the job cancelled or the lease taken over, it raises a flag that the
job's code sees at its next ``check()`` (called at every stage and progress update), so the job
stops before it commits anything.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from orgmem.db.session import session_scope
from orgmem.jobs.lease import JobCancelled, LeaseLostError, guard_commit, renew_lease
from orgmem.jobs.records import add_event, get_job

logger = logging.getLogger(__name__)


class Heartbeat(threading.Thread):
    """Renews ``owner``'s lease on ``job_id`` until stopped; remembers why renewal failed."""

    def __init__(self, job_id: str, owner: str, ttl: float, interval: float) -> None:
        super().__init__(name=f"heartbeat-{job_id}", daemon=True)
        self.job_id, self.owner, self.ttl, self.interval = job_id, owner, ttl, interval
        self.failure: Exception | None = None
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            try:
                with session_scope(write=True) as session:
                    renew_lease(session, self.job_id, self.owner, self.ttl)
            except (JobCancelled, LeaseLostError) as exc:
                self.failure = exc
                logger.warning("heartbeat stopped", extra={"job": self.job_id, "reason": str(exc)})
                return
            except Exception as exc:  # database blip: keep trying until the lease really lapses
                logger.warning(
                    "lease renewal failed, will retry", extra={"job": self.job_id, "error": str(exc)}
                )

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=self.interval + 5)


@dataclass
class JobContext:
    """Handed to a job handler: identity of the job and ways to report back."""

    job_id: str
    owner: str
    attempt: int
    kind: str
    org_id: int | None
    params: dict[str, Any]
    heartbeat: Heartbeat | None = None
    min_progress_interval: float = 1.0
    _last_progress_write: float = field(default=0.0, repr=False)

    def check(self) -> None:
        """Raise JobCancelled / LeaseLostError if the job must stop now."""
        if self.heartbeat is not None and self.heartbeat.failure is not None:
            raise self.heartbeat.failure
        with session_scope() as session:
            if get_job(session, self.job_id).status == "cancelled":
                raise JobCancelled(f"job {self.job_id!r} was cancelled")

    def guard_commit(self, session: Session) -> None:
        """In the transaction that commits the job's results: refuse unless it still holds its lease
        (a cancel frees the lease at once, so the last ``check()`` is not enough)."""
        guard_commit(session, self.job_id, self.owner)

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Record progress (throttled unless a message marks a new stage), then ``check()``."""
        now = time.monotonic()
        if message is None and now - self._last_progress_write < self.min_progress_interval:
            if self.heartbeat is not None and self.heartbeat.failure is not None:
                raise self.heartbeat.failure
            return
        self._last_progress_write = now
        with session_scope(write=True) as session:
            job = get_job(session, self.job_id)
            job.progress = min(1.0, max(0.0, float(fraction)))
            if message:
                add_event(session, job, message, data={"progress": round(job.progress, 4)})
        self.check()

    def event(self, message: str, *, level: str = "info", data: dict[str, Any] | None = None) -> None:
        with session_scope(write=True) as session:
            add_event(session, self.job_id, message, level=level, data=data)
