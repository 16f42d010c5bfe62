"""``orgmem audit ORG``: who did what to the org, and when (admin actions, commits, forgets)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from orgmem.cli.common import JsonFlag, db_session, emit, format_table, parse_duration, parse_time, short_time


def parse_since(text: str) -> datetime:
    """An ISO time, or a duration back from now (``1d``, ``2h``, ``90m``)."""
    try:
        return datetime.now(UTC) - parse_duration(text)
    except typer.BadParameter:
        pass
    try:
        return parse_time(text)
    except typer.BadParameter:
        raise typer.BadParameter(
            f"--since {text!r} is neither an ISO time (2026-11-25T22:00Z) nor a duration (2h, 1d)"
        ) from None


def command(
    org: Annotated[str, typer.Argument(help="Org slug.")],
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

    start = parse_since(since) if since else None
    with db_session() as session:
        events = list_audit(session, get_org(session, org).id, since=start, action=action, limit=limit)
        rows = [audit_dict(e) for e in events]
        table = [
            (short_time(e.created_at), e.actor, e.action, e.target or "", json.dumps(e.data or {})[:80])
            for e in events
        ]
    empty = f"org {org!r} has no audit events" + (f" since {start.isoformat()}" if start else "")
    headers = ["AT", "ACTOR", "ACTION", "TARGET", "DETAILS"]
    emit(rows, as_json, lambda: format_table(headers, table) if table else empty)
