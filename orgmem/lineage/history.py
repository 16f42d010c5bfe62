"""What an org served over time, from its serving events (per audience: the org's by default)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orgmem.db.models import Org, ServingEvent


def event_dict(event: ServingEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.created_at.isoformat(),
        "audience": event.audience,
        "action": event.action,
        "checkpoint_id": event.checkpoint_id,
        "previous_checkpoint_id": event.previous_checkpoint_id,
        "served_checkpoint_id": event.served_checkpoint_id,
        "actor": event.actor,
        "reason": event.reason,
    }


def serving_history(session: Session, org: Org, audience: str = "org") -> list[ServingEvent]:
    """Every serving event of ``org``'s ``audience`` lineage, oldest first."""
    query = select(ServingEvent).where(ServingEvent.org_id == org.id, ServingEvent.audience == audience)
    return list(session.scalars(query.order_by(ServingEvent.created_at, ServingEvent.id)))


@dataclass(frozen=True)
class ServedAt:
    """The checkpoint served at ``at`` (None: nothing yet), and the event that made it so."""

    at: datetime
    checkpoint_id: str | None
    event: ServingEvent | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "served_checkpoint_id": self.checkpoint_id,
            "since": self.event.created_at.isoformat() if self.event else None,
            "event": event_dict(self.event) if self.event else None,
        }


def served_at(session: Session, org: Org, at: datetime, audience: str = "org") -> ServedAt:
    query = (
        select(ServingEvent)
        .where(
            ServingEvent.org_id == org.id, ServingEvent.audience == audience, ServingEvent.created_at <= at
        )
        .order_by(ServingEvent.created_at.desc(), ServingEvent.id.desc())
        .limit(1)
    )
    event = session.scalar(query)
    return ServedAt(at=at, checkpoint_id=event.served_checkpoint_id if event else None, event=event)
