"""Background jobs (sync, consolidation): records, leases, heartbeats, outcomes.

The jobs table is the truth about queued work. ``create_job`` makes a row; a worker runs it with
``run_job(job_id, handler)`` which claims a lease (at most one consolidation per org), renews it
from a heartbeat, and records success, failure, retry or cancellation. ``recover_stale_jobs``
re-queues the jobs of workers that died; a holder that died on this machine frees its lease at
once (``holder``, ``orphans``). How a job leaves the process is ``queue.JobQueue``: ``workers``
plugs Celery into it, ``queue.InlineQueue`` runs a job here instead.
"""

from orgmem.jobs.context import Heartbeat, JobContext
from orgmem.jobs.holder import Holder, is_gone, this_process
from orgmem.jobs.lease import (
    Claim,
    JobCancelled,
    LeaseHeldError,
    LeaseLostError,
    claim_job,
    guard_commit,
    held_message,
    live_org_holder,
    org_lease_holder,
    release_lease,
    renew_lease,
)
from orgmem.jobs.lifecycle import (
    cancel_job,
    fail_job,
    finish_job,
    mark_cancelled,
    recover_stale_jobs,
    requeue_failed,
    schedule_retry,
)
from orgmem.jobs.orphans import release_if_gone
from orgmem.jobs.queue import InlineQueue, JobQueue, install_job_queue, job_queue
from orgmem.jobs.records import (
    ACTIVE,
    FINISHED,
    add_event,
    create_job,
    get_job,
    job_dict,
    job_events,
    list_jobs,
    set_progress,
)
from orgmem.jobs.runner import TRANSIENT_ERRORS, Handler, JobFailed, Outcome, run_job, worker_name
from orgmem.jobs.settings import JobSettings, get_job_settings

__all__ = [
    "ACTIVE",
    "FINISHED",
    "TRANSIENT_ERRORS",
    "Claim",
    "Handler",
    "Heartbeat",
    "Holder",
    "InlineQueue",
    "JobCancelled",
    "JobContext",
    "JobFailed",
    "JobQueue",
    "JobSettings",
    "LeaseHeldError",
    "LeaseLostError",
    "Outcome",
    "add_event",
    "cancel_job",
    "claim_job",
    "create_job",
    "fail_job",
    "finish_job",
    "get_job",
    "get_job_settings",
    "install_job_queue",
    "guard_commit",
    "held_message",
    "is_gone",
    "job_dict",
    "job_events",
    "job_queue",
    "list_jobs",
    "live_org_holder",
    "mark_cancelled",
    "org_lease_holder",
    "recover_stale_jobs",
    "release_if_gone",
    "release_lease",
    "renew_lease",
    "requeue_failed",
    "run_job",
    "schedule_retry",
    "set_progress",
    "this_process",
    "worker_name",
]
