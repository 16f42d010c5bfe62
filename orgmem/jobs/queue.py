"""How a job leaves the process: the ``JobQueue`` interface, the process's installed queue, and
``InlineQueue``, which runs a job here instead of sending it.

Code that starts background work (``orgmem.ops.jobs``) only knows this interface, so it runs the
same with Celery (``workers.queue.CeleryJobQueue``, installed by the CLI, the API app and the
worker processes), with a test's fake, or inline. The job row is the truth either way: a queue
only carries the job id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from orgmem.db.session import session_scope
from orgmem.errors import OrgmemError
from orgmem.jobs.lifecycle import cancel_job
from orgmem.jobs.runner import Handler, Outcome, run_job
from orgmem.jobs.settings import JobSettings, get_job_settings


class JobQueue(Protocol):
    """Something that gets a committed job to whoever runs it."""

    def send(self, job_id: str, *, countdown: float | None = None) -> str:
        """Hand job ``job_id`` on (after ``countdown`` seconds); returns the broker's task id."""
        ...


_installed: JobQueue | None = None


def install_job_queue(queue: JobQueue | None) -> None:
    """Make ``queue`` the process's queue (None removes it); done once by each composition root."""
    global _installed
    _installed = queue


def job_queue() -> JobQueue:
    """The installed queue; an OrgmemError when this process has none (nothing can be queued)."""
    if _installed is None:
        raise OrgmemError(
            "no job queue is configured in this process: it cannot queue jobs (run them with --inline, "
            "or start it through `orgmem` / the API server, which install the worker queue)"
        )
    return _installed


FollowUp = Callable[[str, Outcome, JobQueue], None]


class InlineQueue:
    """Runs each job it is sent in this process, once: no retry loop (a failed job is re-run with
    ``orgmem jobs retry``). A job that would wait for a busy org is cancelled with the reason, since
    nobody re-sends an inline job. ``follow_up(job_id, outcome, queue)`` starts what the job chains
    to, on this same queue, so a chain run inline stays inline."""

    def __init__(self, handler: Handler, *, follow_up: FollowUp | None = None, owner: str | None = None,
                 lease_seconds: float | None = None) -> None:
        self.handler, self.follow_up, self.owner = handler, follow_up, owner
        self.lease_seconds = lease_seconds

    def _settings(self) -> JobSettings:
        values = {**get_job_settings().model_dump(), "max_attempts": 1}
        if self.lease_seconds is not None:
            values.update(lease_seconds=self.lease_seconds, heartbeat_seconds=0.0)
        return JobSettings(**values)

    def run(self, job_id: str) -> Outcome:
        outcome = run_job(job_id, self.handler, owner=self.owner, settings=self._settings())
        if outcome.status == "waiting":
            with session_scope(write=True) as session:
                cancel_job(session, job_id, actor="inline", reason=f"not run: {outcome.error}")
        if self.follow_up is not None:
            self.follow_up(job_id, outcome, self)
        return outcome

    def send(self, job_id: str, *, countdown: float | None = None) -> str:
        """Run the job now (``countdown`` is ignored: there is no later for an inline run)."""
        self.run(job_id)
        return f"inline:{job_id}"
