"""Forget recorded turns: one (its owner's or an admin's delete) or every one past the retention.

A turn is forgotten as a document (``orgmem.pipeline.forget.forget_document``): every checkpoint
trained on it is rolled back past and quarantined, its chunks are excluded for good, and a
receipt is written. Then its text is erased from the database (the turn row and its chunks), so
what remains names only ``turn/<id>``. Queueing the replay consolidation is the caller's
(``orgmem.ops.conversations``); the nightly sync prunes without one, its consolidation follows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from orgmem.db.models import Chunk, ConversationTurn, DocumentVersion
from orgmem.db.session import begin_write, get_row
from orgmem.db.types import utcnow
from orgmem.errors import ConflictError
from orgmem.ingest.conversations.policy import get_policy
from orgmem.ingest.conversations.turns import expired_turns, find_turn
from orgmem.lineage import get_org
from orgmem.lineage.audit import record_audit
from orgmem.pipeline.forget import ForgetResult, forget_document
from orgmem.store.base import ObjectStore

logger = logging.getLogger(__name__)


@dataclass
class Pruned:
    """One retention pass: the receipts written, and the turns left for the next pass (org busy)."""

    org: str
    receipts: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    error: str | None = None
    rolled_back: bool = False  # some forget quarantined a checkpoint: a replay is worth queueing
    replay_job: str | None = None
    replay_note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"org": self.org, "deleted": len(self.receipts), "receipts": list(self.receipts),
                "refused": list(self.refused), "error": self.error, "replay_job": self.replay_job,
                "replay_note": self.replay_note}


def _erase(session: Session, turn_id: str, receipt_id: str | None, *, actor: str, reason: str | None,
           now: datetime) -> None:
    """After the forget committed: the turn's text out of its row and its chunks; audited; commits."""
    begin_write(session)
    turn = get_row(session, ConversationTurn, turn_id)
    turn.text, turn.forgotten_at, turn.receipt_id = None, now, receipt_id
    if turn.document_id is not None:
        versions = select(DocumentVersion.id).where(DocumentVersion.document_id == turn.document_id)
        session.execute(update(Chunk).where(Chunk.document_version_id.in_(versions)).values(text="")
                        .execution_options(synchronize_session=False))
    record_audit(session, org_id=turn.org_id, actor=actor, action="conversations.turn.delete",
                 target=turn_id, data={"receipt": receipt_id, "reason": reason})
    session.commit()


def forget_turn(session: Session, org: str, turn_id: str, *, actor: str,  # noqa: PLR0913
                key_id: int | None = None, reason: str | None = None, store: ObjectStore | None = None,
                now: datetime | None = None) -> ForgetResult | None:
    """Forget turn ``turn_id`` of ``org`` and erase its text; commits. With ``key_id`` only that key's
    own turn: another key's, another org's, an unknown or an already deleted turn raise the same
    ``NotFoundError``. A consolidation holding the org refuses it (``ConflictError``), changing nothing.
    None (no receipt) when the turn's document is already gone (its source was removed): only the
    text is erased then, nothing can have been trained on a document that no longer exists."""
    turn = find_turn(session, get_org(session, org), turn_id, key_id=key_id)
    has_document = turn.document_id is not None
    session.commit()  # the forget opens its own write transaction
    why = reason or "conversation turn deleted"
    if not has_document:
        _erase(session, turn_id, None, actor=actor, reason=why, now=now or utcnow())
        return None
    result = forget_document(session, org, f"turn/{turn_id}", actor=actor, reason=why, store=store)
    _erase(session, turn_id, result.receipt, actor=actor, reason=why, now=now or utcnow())
    logger.warning("conversation turn forgotten",
                   extra={"org": org, "turn": turn_id, "receipt": result.receipt})
    return result


def prune_expired(session: Session, org: str, *, now: datetime | None = None, actor: str = "retention",
                  store: ObjectStore | None = None) -> Pruned:
    """Forget every turn of ``org`` older than its policy's retention at ``now`` (oldest first).
    A forget refused because a consolidation holds the org stops the pass; ``refused`` names the rest."""
    now = now or utcnow()
    result = Pruned(org)
    policy = get_policy(session, get_org(session, org))
    if policy is None:
        return result
    days = policy.retention_days
    ids = expired_turns(session, get_org(session, org), days, now)
    session.commit()
    for i, turn_id in enumerate(ids):
        try:
            done = forget_turn(session, org, turn_id, actor=actor, store=store, now=now,
                               reason=f"retention: older than {days} days")
        except ConflictError as exc:
            session.rollback()
            result.refused, result.error = ids[i:], str(exc)
            logger.warning("conversation retention stopped: org busy",
                           extra={"org": org, "left": len(ids) - i})
            break
        if done is not None:
            result.receipts.append(done.receipt)
            result.rolled_back = result.rolled_back or bool(done.quarantined)
    return result
