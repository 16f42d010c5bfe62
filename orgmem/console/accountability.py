"""What the audit and receipts pages show: ``orgmem audit`` and ``orgmem receipts`` for the browser.

The same library functions as the CLI and ``/api/orgs/{org}/audit|receipts`` read the rows
(``orgmem.lineage.audit``, ``orgmem.lineage.receipts``), with the same filters: an action matches
exactly or as a family prefix (``serving`` finds ``serving.pin``), ``since`` is an ISO time or a
duration back from now. This module only arranges the results for display.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orgmem.db.models import AuditEvent, Org
from orgmem.errors import OrgmemError
from orgmem.lineage.audit import audit_dict, list_audit, parse_since
from orgmem.lineage.receipts import get_receipt, list_receipts, receipt_dict

#: The audit page shows the newest this many events (the filters narrow it down further).
AUDIT_SHOWN = 500


@dataclass
class AuditPage:
    events: list[dict[str, Any]] = field(default_factory=list)  # newest first
    families: list[str] = field(default_factory=list)  # what the action filter offers
    action: str = ""
    since: str = ""
    truncated: bool = False  # more events match than are shown
    error: str | None = None  # a filter that could not be read (nothing is listed then)


def details(data: dict[str, Any] | None) -> list[tuple[str, str]]:
    """An event's details as ``(name, value)`` pairs; nested values as compact JSON."""
    return [(str(k), v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str))
            for k, v in sorted((data or {}).items())]


def families(session: Session, org: Org) -> list[str]:
    """The action families (``serving``, ``source``...) of ``org``'s audit trail, by name."""
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.org_id == org.id).distinct())
    return sorted({action.split(".", 1)[0] for action in actions})


def audit(session: Session, org: Org, *, action: str | None = None, since: str | None = None,
          limit: int = AUDIT_SHOWN) -> AuditPage:
    """The org's audit events matching the filters, newest first (at most ``limit``)."""
    page = AuditPage(families=families(session, org), action=(action or "").strip(),
                     since=(since or "").strip())
    try:
        start = parse_since(page.since) if page.since else None
    except OrgmemError as exc:
        page.error = str(exc)
        return page
    rows = list_audit(session, org.id, since=start, action=page.action or None, limit=limit + 1)
    page.truncated = len(rows) > limit
    page.events = [{**audit_dict(e), "details": details(e.data)} for e in reversed(rows[-limit:])]
    return page


def receipts(session: Session, org: Org) -> list[dict[str, Any]]:
    """Every forget receipt of ``org``, newest first, in the API's shape."""
    return [receipt_dict(r, org.slug) for r in list_receipts(session, org)]


def receipt(session: Session, org: Org, receipt_id: str) -> dict[str, Any]:
    """One receipt of ``org`` (another org's is "not found", as on ``/api``)."""
    return receipt_dict(get_receipt(session, receipt_id, org), org.slug)
