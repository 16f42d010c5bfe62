"""Record one finished chat turn as a document of the org's ``conversations`` source.

The turn (last user message + the answer) goes through the same ``SourceWriter`` as every synced
document: secrets always, and the policy's PII kinds, are redacted before anything is stored
(a turn that is nothing but secrets is not stored at all), then it is chunked into pending chunks.

Audience: a key without groups records into ``org``. A group key records into one group only,
its first group in name order (keys keep their groups sorted), never ``org``: the turn then
trains that group's memory alone. A key of several groups thus never spreads one turn across
groups (docs/conversations.md says why, and what that leaves).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connectors.base import DocumentVersion as Incoming
from connectors.base import text_hash
from orgmem.db.models import ConversationTurn, Org
from orgmem.db.types import new_id, utcnow
from orgmem.governance import GovernancePolicy
from orgmem.ingest.conversations.policy import ensure_conversations_source, get_policy
from orgmem.ingest.conversations.settings import ConversationSettings, get_conversation_settings
from orgmem.ingest.report import SyncReport
from orgmem.ingest.writer import Known, SourceWriter
from orgmem.lineage.audiences import ORG_AUDIENCE

logger = logging.getLogger(__name__)

TRUNCATED = " […]"
_LABELS = re.compile(r"^(?:User|Assistant): ", re.MULTILINE)
_PLACEHOLDER = re.compile(r"\[REDACTED:[a-z0-9:-]+\]")
_ORDINARY = re.compile(r"[^\W_]")


@dataclass(frozen=True)
class TurnInput:
    """What the server knows of a finished chat turn (``orgmem.api.turns.CompletedTurn``, flattened)."""

    org_id: int
    key_id: int
    groups: tuple[str, ...]
    question: str
    answer: str
    response_id: str
    checkpoint: str  # the label of the checkpoints that answered


@dataclass(frozen=True)
class Recorded:
    """A recorded turn's id, or why the turn was not recorded (``skipped``)."""

    turn_id: str | None = None
    skipped: str | None = None
    audience: str | None = None


class _TurnWriter(SourceWriter):
    """Every turn is a new document (its external id holds a fresh turn id): nothing to load first,
    which keeps recording O(1) however many turns the source already holds."""

    def _load_known(self) -> dict[str, Known]:
        return {}


def _only_secrets(text: str) -> bool:
    """Nothing to learn once the ``User:``/``Assistant:`` labels and the placeholders are gone (the
    rule governance applies to whole documents, ``orgmem.governance.redact``)."""
    return not _ORDINARY.search(_PLACEHOLDER.sub("", _LABELS.sub("", text)))


def turn_audience(groups: Sequence[str]) -> str:
    """``org`` for a key without groups, else the key's first group in name order."""
    return sorted(groups)[0] if groups else ORG_AUDIENCE


def bound_turn(question: str, answer: str, max_chars: int) -> tuple[str, str, bool]:
    """Question and answer cut to ``max_chars`` together: the question keeps at most half."""
    if len(question) + len(answer) <= max_chars:
        return question, answer, False
    q = question if len(question) <= max_chars // 2 else question[: max_chars // 2] + TRUNCATED
    a_room = max(0, max_chars - len(q))
    a = answer if len(answer) <= a_room else answer[:a_room] + TRUNCATED
    return q, a, True


def _recorded_since(session: Session, turn: TurnInput, since: datetime) -> int:
    query = select(func.count()).select_from(ConversationTurn).where(
        ConversationTurn.org_id == turn.org_id, ConversationTurn.key_id == turn.key_id,
        ConversationTurn.created_at >= since)
    return session.scalar(query) or 0


def record_turn(session: Session, turn: TurnInput, *, count_tokens: Callable[[str], int],
                now: datetime | None = None, settings: ConversationSettings | None = None) -> Recorded:
    """Store ``turn`` when its org records conversations (flushes; the caller commits)."""
    cfg = settings or get_conversation_settings()
    now = now or utcnow()
    org = session.get(Org, turn.org_id)
    policy = get_policy(session, org) if org is not None else None
    if org is None or policy is None or not policy.enabled:
        return Recorded(skipped="disabled")
    if not turn.question.strip():
        return Recorded(skipped="no user message")
    if _recorded_since(session, turn, now - timedelta(days=1)) >= cfg.turns_per_key_per_day:
        logger.warning("conversation turn not recorded: daily limit", extra={
            "org": org.slug, "key": turn.key_id, "limit": cfg.turns_per_key_per_day})
        return Recorded(skipped="daily limit")
    question, answer, truncated = bound_turn(turn.question, turn.answer, cfg.max_turn_chars)
    audience = turn_audience(turn.groups)
    turn_id = new_id("turn", 8)
    text = f"User: {question}\nAssistant: {answer}"
    source = ensure_conversations_source(session, org)
    report = SyncReport(org=org.slug, source=source.name, kind=source.kind)
    writer = _TurnWriter(session, org, source, report, policy=GovernancePolicy(frozenset(policy.redact_pii)),
                         count_tokens=count_tokens)
    doc = Incoming(external_id=f"turn/{turn_id}", uri=f"orgmem:conversations/{turn_id}", text=text,
                   content_hash=text_hash(text), title="chat turn", created_at=now, updated_at=now,
                   audience=audience, metadata={"path": "chat-turn", "turn": turn_id,
                                                "response_id": turn.response_id, "truncated": truncated})
    savepoint = session.begin_nested()
    governed = writer.write(doc)
    if governed is not None and not governed.skip_reason and _only_secrets(governed.text):
        savepoint.rollback()  # what the labels leave of the turn is nothing but secrets: a key pasted alone
        governed.skip_reason = "only secrets"
    else:
        savepoint.commit()
    if governed is None or governed.skip_reason:
        reason = governed.skip_reason if governed is not None else "unchanged"
        logger.warning("conversation turn not recorded", extra={"org": org.slug, "reason": reason})
        return Recorded(skipped=f"governance: {reason}")
    session.add(ConversationTurn(
        id=turn_id, org_id=org.id, key_id=turn.key_id, document_id=writer.known[doc.external_id].document_id,
        audience=audience, response_id=turn.response_id[:64], checkpoint=turn.checkpoint[:200],
        text=governed.text, truncated=truncated, redactions=len(governed.redactions), created_at=now))
    session.flush()
    logger.info("conversation turn recorded", extra={"org": org.slug, "turn": turn_id, "audience": audience,
                                                     "redactions": len(governed.redactions)})
    return Recorded(turn_id=turn_id, audience=audience)
