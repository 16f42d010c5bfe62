"""Replies the server produced, kept so feedback can say which one it is about.

One row per finished reply (per choice): the question, the answer, the key, the model and the
checkpoint(s) that answered. Bounded per org and expired after a set time, both on write, so the
table never grows with traffic. Lookups are scoped to the asking key (or an admin of its org):
another key's, another org's, an unknown and an expired response are the same "not found".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from orgmem.db.models import ResponseRecord
from orgmem.db.types import utcnow
from orgmem.errors import NotFoundError
from orgmem.feedback.settings import FeedbackSettings
from orgmem.keys import ApiKeyIdentity
from orgmem.lineage.audiences import ORG_AUDIENCE


@dataclass(frozen=True)
class Reply:
    """What a reply record holds, without the session (``api.turns.CompletedTurn`` maps to it)."""

    response_id: str
    choice_index: int
    model: str
    audience: str
    checkpoint_id: str | None
    checkpoint_label: str
    question: str
    answer: str


def record_reply(session: Session, identity: ApiKeyIdentity, reply: Reply, settings: FeedbackSettings,
                 now: datetime | None = None) -> ResponseRecord:
    """Store ``reply`` and prune the org's expired and surplus records."""
    now = now or utcnow()
    row = ResponseRecord(
        response_id=reply.response_id[:64], choice_index=reply.choice_index, org_id=identity.org_id,
        key_id=identity.key_id, key_groups=list(identity.groups), model=reply.model[:200],
        audience=reply.audience, checkpoint_id=reply.checkpoint_id,
        checkpoint_label=reply.checkpoint_label[:500],
        question=reply.question, answer=reply.answer, created_at=now,
        expires_at=now + timedelta(hours=settings.response_ttl_hours))
    session.add(row)
    session.flush()
    prune(session, identity.org_id, settings.max_responses_per_org, now)
    return row


def prune(session: Session, org_id: int, keep: int, now: datetime | None = None) -> int:
    """Delete the org's expired records and all but its newest ``keep``; returns how many went."""
    now = now or utcnow()
    gone = session.execute(delete(ResponseRecord).where(
        ResponseRecord.org_id == org_id, ResponseRecord.expires_at < now)).rowcount or 0  # type: ignore[attr-defined]
    count = session.scalar(select(func.count()).select_from(ResponseRecord)
                           .where(ResponseRecord.org_id == org_id)) or 0
    if count > keep:
        oldest = select(ResponseRecord.id).where(ResponseRecord.org_id == org_id).order_by(
            ResponseRecord.created_at, ResponseRecord.id).limit(count - keep)
        gone += session.execute(delete(ResponseRecord).where(
            ResponseRecord.id.in_(list(session.scalars(oldest))))).rowcount or 0  # type: ignore[attr-defined]
    return gone


def not_found(response_id: str) -> NotFoundError:
    """One answer for unknown, expired, another key's and another org's responses (no probing)."""
    return NotFoundError(f"response {response_id!r} not found for this key: unknown, expired, or not "
                         "produced for this key")


def find_reply(session: Session, identity: ApiKeyIdentity, response_id: str, choice_index: int = 0,
               now: datetime | None = None) -> ResponseRecord:
    """The record of ``response_id`` if this key may give feedback on it: the key that got the reply,
    or an admin key of the same org reaching the reply's audience."""
    row = session.scalar(select(ResponseRecord).where(
        ResponseRecord.response_id == response_id, ResponseRecord.choice_index == choice_index))
    if row is None or row.org_id != identity.org_id or row.expires_at < (now or utcnow()):
        raise not_found(response_id)
    if row.key_id != identity.key_id and not (identity.is_admin and (
            row.audience == ORG_AUDIENCE or row.audience in identity.groups)):
        raise not_found(response_id)
    return row
