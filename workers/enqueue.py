"""Create jobs and hand them to the queue (or run them here with ``--inline``).

Everything that starts background work goes through these functions: the CLI, the scheduler,
the API and the sync task that chains a consolidation after the nightly sync. The job row is
committed before the message is sent, so a worker never receives a job it cannot find.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import select

from orgmem.db.enums import JobKind, JobStatus
from orgmem.db.models import Job
from orgmem.db.session import begin_write, session_scope
from orgmem.errors import ConflictError, OrgmemError
from orgmem.jobs import (
    FINISHED,
    JobSettings,
    Outcome,
    create_job,
    get_job,
    get_job_settings,
    job_dict,
    run_job,
)
from orgmem.jobs.holder import lease_text
from orgmem.jobs.orphans import release_if_gone
from orgmem.lineage import get_org
from workers.app import CONSOLIDATE_TASK, SYNC_TASK, get_app

logger = logging.getLogger(__name__)

TASK_FOR_KIND = {JobKind.SYNC.value: SYNC_TASK, JobKind.CONSOLIDATE.value: CONSOLIDATE_TASK}


def _active_consolidation(session, org_id: int) -> Job | None:
    query = select(Job).where(
        Job.org_id == org_id,
        Job.kind == JobKind.CONSOLIDATE.value,
        Job.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]),
    )
    return session.scalars(query.order_by(Job.created_at)).first()


def _busy_message(org_slug: str, active: Job) -> str:
    state = active.status
    if active.lease_owner is not None:
        state += f": {lease_text(active)}"
    elif active.status == JobStatus.RUNNING.value:
        state += ": its lease expired, a worker's recovery re-queues it"
    return (
        f"org {org_slug!r} already has consolidation job {active.id!r} ({state}); "
        f"follow it with `orgmem job show {active.id}` or stop it and free the org with "
        f"`orgmem job cancel {active.id}`"
    )


def create_consolidation(org_slug: str, *, actor: str, params: dict[str, Any] | None = None) -> str:
    """A queued consolidation job; refused while the org already has one queued or running
    (one whose holder process died on this machine is failed first, see ``orgmem.jobs.orphans``)."""
    with session_scope(write=True) as session:
        begin_write(session)
        org = get_org(session, org_slug, for_update=True)
        active = _active_consolidation(session, org.id)
        while active is not None and release_if_gone(session, active):
            session.flush()
            active = _active_consolidation(session, org.id)
        if active is not None:
            raise ConflictError(_busy_message(org_slug, active))
        return create_job(session, org, JobKind.CONSOLIDATE, {**(params or {}), "actor": actor}).id


def create_sync(
    org_slug: str, *, actor: str, source: str | None = None, then_consolidate: bool = False
) -> str:
    """A queued sync job for all enabled sources of the org (or the one named ``source``)."""
    params: dict[str, Any] = {"actor": actor, "then_consolidate": then_consolidate}
    if source is not None:
        params["source"] = source
    with session_scope(write=True) as session:
        return create_job(session, get_org(session, org_slug), JobKind.SYNC, params).id


def send(job_id: str, *, countdown: float | None = None) -> str:
    """Put the job's message on its queue; returns the Celery task id (recorded on the job)."""
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


def enqueue_consolidation(org_slug: str, *, actor: str, params: dict[str, Any] | None = None) -> str:
    job_id = create_consolidation(org_slug, actor=actor, params=params)
    send(job_id)
    return job_id


def enqueue_sync(
    org_slug: str, *, actor: str, source: str | None = None, then_consolidate: bool = False
) -> str:
    job_id = create_sync(org_slug, actor=actor, source=source, then_consolidate=then_consolidate)
    send(job_id)
    return job_id


def run_inline(job_id: str) -> Outcome:
    """Run the job in this process, once: no retry loop (a failed job is re-run with ``job retry``)."""
    from workers.handlers import dispatch

    settings = get_job_settings()
    once = JobSettings(**{**settings.model_dump(), "max_attempts": 1})
    outcome = run_job(job_id, dispatch, settings=once)
    if outcome.status == "waiting":  # nobody will re-send an inline job: close it with the reason
        from orgmem.jobs import cancel_job

        with session_scope(write=True) as session:
            cancel_job(session, job_id, actor="inline", reason=f"not run: {outcome.error}")
    from workers.tasks import follow_up

    follow_up(job_id, outcome, inline=True)
    return outcome


def wait_for(
    job_id: str, *, timeout: float | None = None, poll: float = 1.0, on_update=None
) -> dict[str, Any]:
    """Block until the job is finished; returns its ``job_dict``. TimeoutError names the job."""
    deadline = None if timeout is None else time.monotonic() + timeout
    last = None
    while True:
        with session_scope() as session:
            view = job_dict(session, get_job(session, job_id))
        state = (view["status"], view["progress"])
        if on_update is not None and state != last:
            on_update(view)
        last = state
        if view["status"] in FINISHED:
            return view
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id!r} still {view['status']} after {timeout} s")
        time.sleep(poll)
