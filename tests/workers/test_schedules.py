"""Schedules: cron + IANA time zone, persisted in the orgmem database, DST-safe, misfire grace."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from orgmem.db import session_scope
from orgmem.db.types import utcnow
from orgmem.errors import NotFoundError, OrgmemError
from orgmem.jobs import list_jobs
from orgmem.lineage import create_org, get_org
from orgmem.ops.schedule_store import job_id_for, open_job_store, parse_trigger
from orgmem.ops.schedules import (
    disable_schedule,
    get_schedule,
    list_schedules,
    set_schedule,
)
from workers.scheduler import build, reconcile, run_scheduler

OSLO = ZoneInfo("Europe/Oslo")


def _fires(trigger, start: datetime, n: int) -> list[datetime]:
    out, prev, now = [], None, start
    for _ in range(n):
        prev = trigger.get_next_fire_time(prev, now)
        out.append(prev)
        now = prev
    return out


def test_local_time_kept_across_dst_and_fall_back_runs_once():
    trigger = parse_trigger("30 2 * * *", "Europe/Oslo")
    autumn = _fires(trigger, datetime(2026, 10, 23, 12, tzinfo=OSLO), 4)
    # 02:30 happens twice on 25 Oct 2026 (clocks fall back at 03:00): one run only.
    assert [f.astimezone(OSLO).strftime("%m-%d %H:%M") for f in autumn] == [
        "10-24 02:30",
        "10-25 02:30",
        "10-26 02:30",
        "10-27 02:30",
    ]
    utc_hours = [f.astimezone(ZoneInfo("UTC")).hour for f in autumn]
    assert utc_hours == [0, 0, 1, 1], "02:30 local is 00:30 UTC in summer time, 01:30 UTC in winter"
    spring = _fires(trigger, datetime(2027, 3, 26, 12, tzinfo=OSLO), 3)
    assert len({f.date() for f in spring}) == 3, "one run per day even when 02:30 does not exist"


@pytest.mark.parametrize(
    ("cron", "tz", "match"),
    [
        ("0 25 * * *", "UTC", "invalid cron expression '0 25"),
        ("0 2 * *", "UTC", "invalid cron expression"),
        ("0 2 * * *", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_bad_schedule_is_refused_and_nothing_stored(org, cron, tz, match):
    with pytest.raises(OrgmemError, match=match):
        set_schedule(org, cron, tz, actor="test")
    assert list_schedules() == []


def test_set_list_off_and_unknown_org(org):
    view = set_schedule(org, "0 2 * * *", "Europe/Oslo", actor="test")
    assert view.enabled and view.timezone == "Europe/Oslo"
    assert view.next_run is not None and view.next_run.astimezone(OSLO).hour == 2
    changed = set_schedule(org, "15 3 * * 1-5", "UTC", actor="test")
    assert [v.as_dict()["cron"] for v in list_schedules()] == ["15 3 * * 1-5"]
    assert changed.next_run.astimezone(ZoneInfo("UTC")).strftime("%H:%M") == "03:15"
    off = disable_schedule(org, actor="test")
    assert not off.enabled and off.next_run is None
    with pytest.raises(NotFoundError, match="'nobody' not found"):
        set_schedule("nobody", "0 2 * * *", "UTC", actor="test")
    with session_scope(write=True) as s:
        create_org(s, "beta", actor="test")
    with pytest.raises(NotFoundError, match="'beta' has no schedule"):
        get_schedule("beta")
    with pytest.raises(NotFoundError, match="'beta' has no schedule to turn off"):
        disable_schedule("beta", actor="test")


def _set_next_run(org_slug: str, when: datetime) -> None:
    with open_job_store() as store:
        job = store.lookup_job(job_id_for(org_slug))
        job._modify(next_run_time=when)
        store.update_job(job)


def _sync_jobs(org_slug: str):
    with session_scope() as s:
        return [(j.kind, j.params) for j in list_jobs(s, get_org(s, org_slug))]


def _wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_missed_run_happens_once_on_restart(org):
    set_schedule(org, "0 2 * * *", "Europe/Oslo", actor="test")
    _set_next_run(org, utcnow() - timedelta(minutes=30))  # the scheduler was down at 02:00
    scheduler = run_scheduler()
    try:
        assert _wait_for(lambda: len(_sync_jobs(org)) == 1)
        time.sleep(0.5)
        jobs = _sync_jobs(org)
        assert jobs == [("sync", {"actor": "scheduler", "then_consolidate": True})], "ran once"
        nxt = scheduler.get_job(job_id_for(org)).next_run_time
        assert nxt > utcnow() and nxt.astimezone(OSLO).hour == 2, "then back on the nightly rhythm"
    finally:
        scheduler.shutdown(wait=False)


def test_run_missed_beyond_grace_is_skipped(org, monkeypatch):
    monkeypatch.setenv("ORGMEM_SCHEDULE_MISFIRE_GRACE_SECONDS", "60")
    set_schedule(org, "0 2 * * *", "UTC", actor="test")
    _set_next_run(org, utcnow() - timedelta(hours=3))
    scheduler = run_scheduler()
    try:
        assert _wait_for(lambda: scheduler.get_job(job_id_for(org)).next_run_time > utcnow())
        time.sleep(0.3)
        assert _sync_jobs(org) == []
    finally:
        scheduler.shutdown(wait=False)


def test_reconcile_keeps_unchanged_jobs_and_removes_turned_off(org):
    set_schedule(org, "0 2 * * *", "UTC", actor="test")
    scheduler = build()
    scheduler.start(paused=True)
    try:
        assert reconcile(scheduler) == {"added": [], "removed": []}, "unchanged job untouched"
        with session_scope(write=True) as s:  # turned off by another process (e.g. the API)
            from orgmem.db.models import Schedule

            s.query(Schedule).update({"enabled": False})
        assert reconcile(scheduler) == {"added": [], "removed": [org]}
    finally:
        scheduler.shutdown(wait=False)
