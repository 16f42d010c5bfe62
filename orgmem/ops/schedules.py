"""Nightly schedules: when each org's loop runs (cron + time zone), kept in the orgmem database.

Two records per org, written together: the ``schedules`` row (what a person set; read by the CLI
and the API) and the org's job in the scheduler's store (``schedule_store``), which the scheduler
process (``orgmem scheduler``) runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from orgmem.db.models import Org, Schedule
from orgmem.db.session import session_scope
from orgmem.db.types import utcnow
from orgmem.errors import NotFoundError
from orgmem.lineage import get_org, record_audit
from orgmem.ops.schedule_store import job_id_for, next_runs, parse_trigger, write_store

logger = logging.getLogger(__name__)


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
    write_store(org_slug, trigger)
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
    write_store(org_slug, None)
    return get_schedule(org_slug)


def list_schedules() -> list[ScheduleView]:
    runs = next_runs()
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
