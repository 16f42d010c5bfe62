"""Starting, stopping and following background jobs: the rules every caller shares.

The CLI, the ``/api`` routes, the console, the scheduler and the nightly chain all go through
these functions. A job row is committed before its id is sent on the queue
(``orgmem.jobs.queue``), so whoever runs it always finds it. An org runs one consolidation at a
time: a second is refused with the running one named.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orgmem.db.enums import JobKind, JobStatus
from orgmem.db.models import Job, Org
from orgmem.db.session import begin_write, session_scope
from orgmem.errors import ConflictError, OrgmemError
from orgmem.jobs import (
    FINISHED,
    InlineQueue,
    JobQueue,
    Outcome,
    add_event,
    cancel_job,
    create_job,
    get_job,
    job_dict,
    job_queue,
    requeue_failed,
)
from orgmem.jobs.holder import lease_text
from orgmem.jobs.orphans import release_if_gone
from orgmem.jobs.runner import worker_name
from orgmem.lineage import get_org
from orgmem.ops.chain import after_sync, next_group

if TYPE_CHECKING:
    from orgmem.ingest.report import SyncReport

#: An inline sync holds its job this long without renewing: the CLI process is the only runner.
INLINE_LEASE_S = 6 * 3600.0


def _active_consolidation(session: Session, org_id: int) -> Job | None:
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
        f"follow it with `orgmem jobs show {active.id}` or stop it and free the org with "
        f"`orgmem jobs cancel {active.id}`"
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


def submit_consolidation(
    org_slug: str, *, actor: str, params: dict[str, Any] | None = None, queue: JobQueue | None = None
) -> str:
    """Create a consolidation and send it (on ``queue``, default the process's); returns its id."""
    job_id = create_consolidation(org_slug, actor=actor, params=params)
    (queue or job_queue()).send(job_id)
    return job_id


def submit_sync(
    org_slug: str,
    *,
    actor: str,
    source: str | None = None,
    then_consolidate: bool = False,
    queue: JobQueue | None = None,
) -> str:
    """Create a sync and send it (on ``queue``, default the process's); returns its id."""
    job_id = create_sync(org_slug, actor=actor, source=source, then_consolidate=then_consolidate)
    (queue or job_queue()).send(job_id)
    return job_id


@dataclass(frozen=True)
class Cancelled:
    """A cancelled job (``job_dict`` without events) and the lease the cancel released, if any."""

    job: dict[str, Any]
    released: str | None


def cancel(session: Session, job_id: str, *, actor: str) -> Cancelled:
    """Cancel a queued job or stop a running one before it commits; frees its org at once. Commits."""
    job = get_job(session, job_id)
    held = lease_text(job) if job.lease_owner is not None else None
    job = cancel_job(session, job_id, actor=actor)
    return Cancelled(job_dict(session, job), held)


def retry(job_id: str, *, actor: str, queue: JobQueue | None = None) -> dict[str, Any]:
    """Run a failed or cancelled job again (same id); re-send a queued one whose message was lost."""
    with session_scope(write=True) as session:
        if get_job(session, job_id).status != JobStatus.QUEUED.value:
            requeue_failed(session, job_id, actor=actor)
    (queue or job_queue()).send(job_id)
    with session_scope() as session:
        return job_dict(session, get_job(session, job_id))


def wait_for(
    job_id: str,
    *,
    timeout: float | None = None,
    poll: float = 1.0,
    on_update: Callable[[dict[str, Any]], None] | None = None,
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


def follow_up(job_id: str, outcome: Outcome, queue: JobQueue) -> None:
    """After a finished job, start what it chains to (``orgmem.ops.chain``) on ``queue``: a sync that
    asked for it starts the org's consolidation (even if some sources failed: what was synced is
    pending and worth consolidating); a nightly consolidation starts the next group with pending
    chunks. Why the next job did not start is an event of this one."""
    if outcome.status not in ("succeeded", "failed"):
        return
    with session_scope() as session:
        job = get_job(session, job_id)
        params = after_sync(job) or next_group(session, job)
        org = session.get(Org, job.org_id) if job.org_id is not None else None
        actor = job.params.get("actor", "scheduler")
        slug, kind = (org.slug if org else None), job.kind
    if params is None or slug is None:
        return
    what = "consolidation" if "audience" not in params else f"group {params['audience']!r} consolidation"
    try:
        next_id = create_consolidation(slug, actor=actor, params=params)
    except OrgmemError as exc:
        message, next_id = f"{what} not started: {exc}", None
    else:
        message = f"{what} job {next_id} queued after {kind}"
    with session_scope(write=True) as session:
        add_event(session, job_id, message, data={"next_job": next_id})
    if next_id is not None:
        queue.send(next_id)


def run_inline(job_id: str) -> Outcome:
    """Run the job in this process, once, and its chain after it (``--inline``, demos, benchmarks)."""
    from orgmem.ops.handlers import dispatch

    return InlineQueue(dispatch, follow_up=follow_up).run(job_id)


def sync_inline(
    org_slug: str,
    *,
    source: str | None = None,
    progress: bool = True,
    count_tokens: Callable[[str], int] | None = None,
) -> tuple[str, list[SyncReport]]:
    """``orgmem sync --inline``: sync the org (or one source) in this process, still recorded as a job
    (created, claimed, finished or failed), so ``orgmem jobs show`` lists its failures and result.
    Any source error fails the job; an exception is recorded, then raised to the caller."""
    from orgmem.ops.handlers import SyncHere

    with session_scope(write=True) as session:
        params = {"source": source, "inline": True}
        job_id = create_job(session, get_org(session, org_slug), JobKind.SYNC, params).id
    here = SyncHere(source, progress=progress, count_tokens=count_tokens)
    InlineQueue(here, owner=f"inline:{worker_name()}", lease_seconds=INLINE_LEASE_S).run(job_id)
    if here.error is not None:
        raise here.error
    return job_id, here.reports
