"""Reading recorded turns back: a key's own (``/v1/conversations/turns``) or any of the org's (admins).

A turn of another key or another org, a forgotten one and one that never existed all raise the
same ``NotFoundError``, so ids cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orgmem.db.models import ConversationTurn, Org
from orgmem.errors import NotFoundError

MAX_PAGE = 100


@dataclass(frozen=True)
class TurnPage:
    turns: list[ConversationTurn]
    has_more: bool


def turn_dict(turn: ConversationTurn, *, admin: bool = False) -> dict[str, Any]:
    """A turn as the API and CLI show it; ``admin`` adds whose key it is and its document."""
    data: dict[str, Any] = {
        "id": turn.id, "object": "conversation.turn", "created_at": turn.created_at.isoformat(),
        "audience": turn.audience, "text": turn.text, "truncated": turn.truncated,
        "redactions": turn.redactions, "response_id": turn.response_id,
        "forgotten_at": turn.forgotten_at.isoformat() if turn.forgotten_at else None,
        "receipt_id": turn.receipt_id,
    }
    if admin:
        data.update(key_id=turn.key_id, document_id=turn.document_id, checkpoint=turn.checkpoint)
    return data


def list_turns(session: Session, org: Org, *, key_id: int | None = None, limit: int = 20,
               after: str | None = None, include_forgotten: bool = False) -> TurnPage:
    """Newest first; ``key_id`` narrows to one key's turns; ``after``: the last id of the previous page."""
    limit = max(1, min(limit, MAX_PAGE))
    query = select(ConversationTurn).where(ConversationTurn.org_id == org.id)
    if key_id is not None:
        query = query.where(ConversationTurn.key_id == key_id)
    if not include_forgotten:
        query = query.where(ConversationTurn.forgotten_at.is_(None))
    if after is not None:
        anchor = session.get(ConversationTurn, after)
        if anchor is None or anchor.org_id != org.id or (key_id is not None and anchor.key_id != key_id):
            raise NotFoundError(f"conversation turn {after!r} not found (the 'after' of a page)")
        query = query.where(
            (ConversationTurn.created_at < anchor.created_at)
            | ((ConversationTurn.created_at == anchor.created_at) & (ConversationTurn.id < anchor.id)))
    rows = list(session.scalars(
        query.order_by(ConversationTurn.created_at.desc(), ConversationTurn.id.desc()).limit(limit + 1)))
    return TurnPage(rows[:limit], len(rows) > limit)


def find_turn(session: Session, org: Org, turn_id: str, *, key_id: int | None = None) -> ConversationTurn:
    """A live turn of ``org`` (and of ``key_id`` when given); anything else is not found, alike."""
    turn = session.get(ConversationTurn, turn_id)
    if (turn is None or turn.org_id != org.id or turn.forgotten_at is not None
            or (key_id is not None and turn.key_id != key_id)):
        raise NotFoundError(f"conversation turn {turn_id!r} not found")
    return turn


def expired_turns(session: Session, org: Org, retention_days: int, now: datetime) -> list[str]:
    """Ids of the org's live turns older than ``retention_days`` at ``now``, oldest first."""
    cutoff = now - timedelta(days=retention_days)
    query = (select(ConversationTurn.id)
             .where(ConversationTurn.org_id == org.id, ConversationTurn.forgotten_at.is_(None),
                    ConversationTurn.created_at < cutoff)
             .order_by(ConversationTurn.created_at, ConversationTurn.id))
    return list(session.scalars(query))
