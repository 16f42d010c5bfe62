"""Nightly schedules: when each org's loop runs (cron + time zone), kept in the orgmem database.

Two records per org, written together: the ``schedules`` row (what a person set; read by the CLI
and the API) and an APScheduler job ``nightly:<org>`` in the SQLAlchemy job store in the same
database (what the scheduler process runs; it persists the next run time, which is how a run
missed while the scheduler was down still happens once on restart, within the grace period).
Time zones come from the IANA database, so "02:00 Europe/Oslo" stays 02:00 local across DST.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import select

from orgmem.config import get_settings
from orgmem.db.models import Org, Schedule
from orgmem.db.scheduler_jobs import TABLE_NAME
from orgmem.db.session import make_engine, session_scope
from orgmem.db.types import utcnow
from orgmem.errors import NotFoundError, OrgmemError
from orgmem.lineage import get_org, record_audit

logger = logging.getLogger(__name__)

NIGHTLY_FUNC = "workers.schedules:run_nightly"
_MAX_SKIPS = 24 * 60  # a repeated hour has at most 60 one-minute fire times; bound the search anyway


class ScheduleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORGMEM_SCHEDULE_", extra="ignore")

    misfire_grace_seconds: int = Field(
        6 * 3600, ge=1, description="A run missed by up to this long still runs."
    )


class NightlyTrigger(CronTrigger):
    """A cron trigger that fires once per local wall-clock time.

    When clocks fall back, the hour before the change happens twice; plain ``CronTrigger`` fires
    in both. Here a fire time whose wall-clock time is not after the previous one's is skipped,
    so a nightly job runs once per night in every season.
    """

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        nxt = super().get_next_fire_time(previous_fire_time, now)
        if previous_fire_time is None:
            return nxt
        prev_wall = previous_fire_time.astimezone(self.timezone).replace(tzinfo=None)
        for _ in range(_MAX_SKIPS):
            if nxt is None or nxt.replace(tzinfo=None) > prev_wall:
                return nxt
            nxt = super().get_next_fire_time(None, nxt.astimezone(UTC) + timedelta(minutes=1))
        return nxt


def parse_trigger(cron: str, tz: str) -> NightlyTrigger:
    """Validate a 5-field cron expression and an IANA time zone; errors name the bad part."""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise OrgmemError(f"unknown time zone {tz!r}: use an IANA name such as Europe/Oslo or UTC") from None
    try:
        return NightlyTrigger.from_crontab(cron, timezone=zone)
    except ValueError as exc:
        raise OrgmemError(
            f"invalid cron expression {cron!r} (minute hour day month weekday): {exc}"
        ) from None


def job_id_for(org_slug: str) -> str:
    return f"nightly:{org_slug}"


def job_store() -> SQLAlchemyJobStore:
    """APScheduler's job store on the orgmem database (table created by migration 0002).

    Its own engine (with orgmem's SQLite settings), because the store disposes it on shutdown.
    """
    return SQLAlchemyJobStore(engine=make_engine(get_settings().database_url), tablename=TABLE_NAME)


def make_scheduler(scheduler_cls: type[BaseScheduler] = BackgroundScheduler) -> BaseScheduler:
    grace = ScheduleSettings().misfire_grace_seconds
    return scheduler_cls(
        jobstores={"default": job_store()},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": grace},
        timezone="UTC",
    )


@contextmanager
def open_job_store() -> Iterator[SQLAlchemyJobStore]:
    """The job store alone, for reading and writing jobs from any process.

    A scheduler is never started for this: a started scheduler, even paused, may run jobs that
    are due while it shuts down, which would steal a missed run from the scheduler process.
    """
    store = job_store()
    store.start(make_scheduler(), "default")
    try:
        yield store
    finally:
        store.shutdown()


def nightly_job(store: SQLAlchemyJobStore, org_slug: str, trigger: NightlyTrigger) -> Job:
    """The APScheduler job of the org's nightly loop, next run computed from now."""
    scheduler = store._scheduler  # the (unstarted) scheduler the store was opened with
    defaults = scheduler._job_defaults
    return Job(
        scheduler,
        id=job_id_for(org_slug),
        func=NIGHTLY_FUNC,
        trigger=trigger,
        executor="default",
        args=[org_slug],
        kwargs={},
        name=f"nightly loop of {org_slug}",
        misfire_grace_time=defaults["misfire_grace_time"],
        coalesce=defaults["coalesce"],
        max_instances=defaults["max_instances"],
        next_run_time=trigger.get_next_fire_time(None, datetime.now(UTC)),
    )


def _write_store(org_slug: str, trigger: NightlyTrigger | None) -> None:
    """Add/replace (trigger) or remove (None) the org's job in the store."""
    with open_job_store() as store:
        existing = store.lookup_job(job_id_for(org_slug))
        if trigger is None:
            if existing is not None:
                store.remove_job(existing.id)
        elif existing is None:
            store.add_job(nightly_job(store, org_slug, trigger))
        else:
            store.update_job(nightly_job(store, org_slug, trigger))


@dataclass(frozen=True)
class ScheduleView:
    org: str
    cron: str
    timezone: str
    enabled: bool
    next_run: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "org": self.org,
            "cron": self.cron,
            "timezone": self.timezone,
            "enabled": self.enabled,
            "next_run": self.next_run.isoformat() if self.next_run else None,
        }


def set_schedule(org_slug: str, cron: str, tz: str = "UTC", *, actor: str) -> ScheduleView:
    """Run the org's nightly loop (sync all sources, then consolidate) at ``cron`` in ``tz``."""
    trigger = parse_trigger(cron, tz)
    with session_scope(write=True) as session:
        org = get_org(session, org_slug)
        row = session.scalar(select(Schedule).where(Schedule.org_id == org.id))
        if row is None:
            row = Schedule(org_id=org.id, cron=cron, timezone=tz, created_at=utcnow())
            session.add(row)
        row.cron, row.timezone, row.enabled, row.updated_at = cron, tz, True, utcnow()
        record_audit(
            session,
            org_id=org.id,
            actor=actor,
            action="schedule.set",
            target=org_slug,
            data={"cron": cron, "timezone": tz},
        )
    _write_store(org_slug, trigger)
    logger.info("schedule set", extra={"org": org_slug, "cron": cron, "tz": tz})
    return get_schedule(org_slug)


def disable_schedule(org_slug: str, *, actor: str) -> ScheduleView:
    """``--off``: keep the row (disabled) so the setting is visible, remove the scheduler job."""
    with session_scope(write=True) as session:
        org = get_org(session, org_slug)
        row = session.scalar(select(Schedule).where(Schedule.org_id == org.id))
        if row is None:
            raise NotFoundError(f"org {org_slug!r} has no schedule to turn off")
        row.enabled, row.updated_at = False, utcnow()
        record_audit(session, org_id=org.id, actor=actor, action="schedule.off", target=org_slug)
    _write_store(org_slug, None)
    return get_schedule(org_slug)


def _next_runs() -> dict[str, datetime | None]:
    with open_job_store() as store:
        return {job.id: job.next_run_time for job in store.get_all_jobs()}


def list_schedules() -> list[ScheduleView]:
    runs = _next_runs()
    with session_scope() as session:
        rows = session.execute(
            select(Org.slug, Schedule).join(Schedule, Schedule.org_id == Org.id).order_by(Org.slug)
        )
        return [
            ScheduleView(slug, s.cron, s.timezone, s.enabled, runs.get(job_id_for(slug))) for slug, s in rows
        ]


def get_schedule(org_slug: str) -> ScheduleView:
    for view in list_schedules():
        if view.org == org_slug:
            return view
    with session_scope() as session:
        get_org(session, org_slug)  # names an unknown org
    raise NotFoundError(
        f"org {org_slug!r} has no schedule (set one with `orgmem schedule {org_slug} --cron ...`)"
    )


def run_nightly(org_slug: str) -> str | None:
    """The scheduled job: sync every source, then consolidate (chained by the sync task)."""
    from workers.enqueue import enqueue_sync

    try:
        job_id = enqueue_sync(org_slug, actor="scheduler", then_consolidate=True)
    except OrgmemError as exc:
        logger.error("nightly run not started", extra={"org": org_slug, "error": str(exc)})
        return None
    logger.info("nightly run started", extra={"org": org_slug, "job": job_id})
    return job_id
