"""``orgmem schedule ORG --cron "0 2 * * *" --tz Europe/Oslo`` / ``--off`` / ``orgmem schedule list``.

A schedule runs the org's nightly loop: sync every enabled source, then consolidate. The
scheduler process (``orgmem scheduler``) carries it out; a run missed while it was down happens
once when it comes back (within ``ORGMEM_SCHEDULE_MISFIRE_GRACE_SECONDS``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from orgmem.cli.common import ActorOption, JsonFlag, actor_or_default, db_session, emit, format_table
from orgmem.errors import OrgmemError

LIST = "list"


def _table(views) -> str:
    rows = [
        (
            v.org,
            v.cron,
            v.timezone,
            "on" if v.enabled else "off",
            v.next_run.isoformat() if v.next_run else "-",
        )
        for v in views
    ]
    return (
        format_table(("org", "cron", "time zone", "state", "next run (UTC)"), rows)
        if rows
        else "no schedules"
    )


def command(
    org: Annotated[str, typer.Argument(help="Org slug, or `list` to list every schedule.")],
    cron: Annotated[str | None, typer.Option("--cron", help='Five-field cron, e.g. "0 2 * * *".')] = None,
    tz: Annotated[str, typer.Option("--tz", help="IANA time zone of the cron times.")] = "UTC",
    off: Annotated[bool, typer.Option("--off", help="Turn the org's schedule off.")] = False,
    actor: ActorOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Set, turn off, show (no options) or list (`orgmem schedule list`) nightly schedules."""
    from orgmem.ops.schedules import disable_schedule, get_schedule, list_schedules, set_schedule

    with db_session():
        pass  # refuses an unmigrated database with the fix
    if org == LIST:
        if cron or off:
            raise OrgmemError("`orgmem schedule list` takes no --cron/--off")
        views = list_schedules()
        emit([v.as_dict() for v in views], as_json, lambda: _table(views))
        return
    if cron and off:
        raise OrgmemError("give either --cron or --off, not both")
    if cron:
        view = set_schedule(org, cron, tz, actor=actor_or_default(actor))
    elif off:
        view = disable_schedule(org, actor=actor_or_default(actor))
    else:
        view = get_schedule(org)
    emit(view.as_dict(), as_json, lambda: _table([view]))
