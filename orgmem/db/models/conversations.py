"""Recorded conversations: an org's opt-in policy and the chat turns recorded under it.

Each recorded turn is also a document of the org's built-in ``conversations`` source (its text
governed and chunked like any source's); the turn row says whose it is (the key), which audience
it trains, and, once deleted, when and under which forget receipt.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from orgmem.db.base import Base
from orgmem.db.types import JSONType, UTCDateTime, utcnow


class ConversationPolicy(Base):
    """Whether an org records its chat turns, and for how many days; no row = never enabled (off)."""

    __tablename__ = "conversation_policies"

    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=False)
    retention_days: Mapped[int] = mapped_column(Integer, default=30)
    redact_pii: Mapped[list[str]] = mapped_column(JSONType, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200))


class ConversationTurn(Base):
    """One recorded turn: the last user message and the answer, governed; text cleared once forgotten."""

    __tablename__ = "conversation_turns"
    __table_args__ = (
        Index("ix_conversation_turns_org_id_key_id_created_at", "org_id", "key_id", "created_at"),
        Index("ix_conversation_turns_org_id_created_at", "org_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"), nullable=True)
    document_id: Mapped[int | None] = mapped_column(
        ForeignKey("documents.id", ondelete="SET NULL"), nullable=True
    )
    audience: Mapped[str] = mapped_column(String(64))
    response_id: Mapped[str] = mapped_column(String(64))
    checkpoint: Mapped[str] = mapped_column(String(200))  # the label of what answered (ck_org+eng:ck_grp)
    text: Mapped[str | None] = mapped_column(Text, nullable=True)  # governed; None once forgotten
    truncated: Mapped[bool] = mapped_column(default=False)
    redactions: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    forgotten_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    receipt_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
