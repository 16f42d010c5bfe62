"""``orgmem audit ORG``: who did what to the org, and when (admin actions, commits, forgets)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer

from orgmem.cli.common import JsonFlag, OrgArg, db_session, emit_table, short_time


def _since(text: str) -> datetime:
    from orgmem.errors import OrgmemError
    from orgmem.lineage.audit import parse_since

    try:
        return parse_since(text)
    except OrgmemError as exc:
        raise typer.BadParameter(str(exc).replace("since", "--since", 1)) from None


def command(
    org: OrgArg,
    since: Annotated[
        str | None, typer.Option("--since", help="ISO time, or a duration back from now: 2h, 1d.")
    ] = None,
    action: Annotated[
        str | None,
        typer.Option("--action", help="Only this action (serving.pin) or family (serving, key, source)."),
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the newest N events.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """The org's audit trail, oldest first: actor, time, action, target, details."""
    from orgmem.lineage import get_org
    from orgmem.lineage.audit import audit_dict, list_audit

    start = _since(since) if since else None
    with db_session() as session:
        events = list_audit(session, get_org(session, org).id, since=start, action=action, limit=limit)
        rows = [audit_dict(e) for e in events]
        table = [
            (short_time(e.created_at), e.actor, e.action, e.target or "", json.dumps(e.data or {})[:80])
            for e in events
        ]
    empty = f"org {org!r} has no audit events" + (f" since {start.isoformat()}" if start else "")
    emit_table(rows, as_json, ["AT", "ACTOR", "ACTION", "TARGET", "DETAILS"], table, empty)
