"""The scheduler process (``orgmem scheduler``): runs each org's nightly loop on time.

At start it reconciles the APScheduler job store with the ``schedules`` table (adds what is
missing, removes what was turned off, leaves unchanged jobs alone so their persisted next run
time survives a restart: that is what makes a missed run happen once on restart). Every
``recover_interval_seconds`` it also re-reads the store (picking up schedules set meanwhile by
the CLI or API) and re-queues jobs of dead workers.
"""

from __future__ import annotations

import logging

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy import select

from orgmem.db.models import Org, Schedule
from orgmem.db.session import session_scope
from orgmem.jobs import get_job_settings
from orgmem.ops.schedule_store import NIGHTLY_FUNC, job_id_for, make_scheduler, parse_trigger
from workers.queue import install_celery_queue

logger = logging.getLogger(__name__)

MAINTENANCE_STORE = "maintenance"


def reconcile(scheduler: BaseScheduler) -> dict[str, list[str]]:
    """Make the job store match the enabled schedules; returns what was added and removed."""
    with session_scope() as session:
        rows = session.execute(
            select(Org.slug, Schedule.cron, Schedule.timezone)
            .join(Schedule, Schedule.org_id == Org.id)
            .where(Schedule.enabled)
        ).all()
    wanted = {job_id_for(slug): (slug, cron, tz) for slug, cron, tz in rows}
    added, removed = [], []
    for job_id, (slug, cron, tz) in wanted.items():
        trigger = parse_trigger(cron, tz)
        job = scheduler.get_job(job_id, jobstore="default")
        if job is None or str(job.trigger) != str(trigger) or str(job.trigger.timezone) != tz:
            scheduler.add_job(
                NIGHTLY_FUNC,
                trigger,
                args=[slug],
                id=job_id,
                jobstore="default",
                name=f"nightly loop of {slug}",
                replace_existing=True,
            )
            added.append(slug)
    for job in scheduler.get_jobs(jobstore="default"):
        if job.id.startswith("nightly:") and job.id not in wanted:
            scheduler.remove_job(job.id, jobstore="default")
            removed.append(job.id.removeprefix("nightly:"))
    if added or removed:
        logger.info("schedules reconciled", extra={"added": added, "removed": removed})
    return {"added": added, "removed": removed}


def maintenance(scheduler: BaseScheduler) -> None:
    """Periodic: re-queue jobs of dead workers; pick up schedule changes made elsewhere."""
    from workers.recovery import recover_once

    try:
        recover_once()
    except Exception:
        logger.exception("stale-job recovery failed")
    try:
        reconcile(scheduler)
    except Exception:
        logger.exception("schedule reconciliation failed")


def build(scheduler_cls: type[BaseScheduler] = BackgroundScheduler) -> BaseScheduler:
    """A scheduler with the nightly jobs (persistent) and the maintenance job (in memory)."""
    scheduler = make_scheduler(scheduler_cls)
    scheduler.add_jobstore(MemoryJobStore(), MAINTENANCE_STORE)
    scheduler.add_job(
        maintenance,
        "interval",
        args=[scheduler],
        id="maintenance",
        jobstore=MAINTENANCE_STORE,
        seconds=get_job_settings().recover_interval_seconds,
        misfire_grace_time=None,
    )
    return scheduler


def run_scheduler() -> BaseScheduler:
    """Start the scheduler in background threads; the caller keeps the process alive and shuts it down."""
    install_celery_queue()
    scheduler = build(BackgroundScheduler)
    scheduler.start(paused=True)  # stores are open; reconcile before anything fires
    reconcile(scheduler)
    logger.info("scheduler running", extra={"jobs": [j.id for j in scheduler.get_jobs()]})
    scheduler.resume()
    return scheduler
