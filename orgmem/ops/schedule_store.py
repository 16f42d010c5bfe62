"""The scheduler's side of a schedule: the cron trigger and the APScheduler job store.

Each org with a schedule has an APScheduler job ``nightly:<org>`` in the SQLAlchemy job store of
the orgmem database (what the scheduler process runs; it persists the next run time, which is how
a run missed while the scheduler was down still happens once on restart, within the grace
period). Time zones come from the IANA database, so "02:00 Europe/Oslo" stays 02:00 local across DST.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from orgmem.config import get_settings
from orgmem.db.scheduler_jobs import TABLE_NAME
from orgmem.db.session import make_engine
from orgmem.errors import OrgmemError

#: What the stored job calls, by name (APScheduler persists the reference): the scheduler process
#: resolves it in ``workers``, where the job is sent to the queue.
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


def write_store(org_slug: str, trigger: NightlyTrigger | None) -> None:
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


def next_runs() -> dict[str, datetime | None]:
    """Next run time of every job in the store, by job id."""
    with open_job_store() as store:
        return {job.id: job.next_run_time for job in store.get_all_jobs()}
