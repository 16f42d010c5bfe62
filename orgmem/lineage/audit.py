"""Append-only audit trail of lineage changes (who did what to which thing)."""

from __future__ import annotations

import getpass
import os
from typing import Any

from sqlalchemy.orm import Session

from orgmem.db.models import AuditEvent


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
