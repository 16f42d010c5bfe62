"""Append-only audit trail of lineage changes (who did what to which thing)."""

from __future__ import annotations

import getpass
import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from orgmem.db.models import AuditEvent
from orgmem.errors import OrgmemError


def default_actor() -> str:
    """``cli:<user>`` unless ``ORGMEM_ACTOR`` names the acting person or service."""
    actor = os.environ.get("ORGMEM_ACTOR")
    if actor:
        return actor
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no passwd entry in some containers
        return "cli:unknown"


def record_audit(
    session: Session,
    *,
    org_id: int | None,
    actor: str,
    action: str,
    target: str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(org_id=org_id, actor=actor, action=action, target=target, data=data or {})
    session.add(event)
    return event


def audit_dict(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.created_at.isoformat(),
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "data": event.data or {},
    }


def list_audit(
    session: Session,
    org_id: int,
    *,
    since: datetime | None = None,
    action: str | None = None,
    limit: int | None = None,
) -> list[AuditEvent]:
    """The org's audit events, oldest first; ``action`` matches exactly or as a prefix (``serving``
    finds ``serving.pin``), so one family of actions can be listed at once."""
    query = select(AuditEvent).where(AuditEvent.org_id == org_id)
    if since is not None:
        query = query.where(AuditEvent.created_at >= since)
    if action:
        query = query.where(or_(AuditEvent.action == action, AuditEvent.action.startswith(action + ".")))
    query = query.order_by(AuditEvent.created_at, AuditEvent.id)
    if limit is not None:  # the newest ``limit``, still oldest first
        return list(reversed(list(session.scalars(query.order_by(None).order_by(
            AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(limit)))))
    return list(session.scalars(query))


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``--since`` / ``?since=``: an ISO time (naive = UTC) or a duration back from now (2h, 1d)."""
    match = _DURATION.match(text.lower())
    if match:
        try:
            return (now or datetime.now(UTC)) - timedelta(seconds=float(match[1]) * _SECONDS[match[2]])
        except OverflowError:  # "99999999d" goes back before year 1 (an API 500, found probing)
            raise OrgmemError(f"since {text!r} reaches back before the year 1") from None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise OrgmemError(
            f"since {text!r} is neither an ISO time (2026-11-25T22:00Z) nor a duration (90m, 2h, 1d, 1w)"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
