"""Learning from use: what the server answered, what users said about it, and reviewed corrections.

``ResponseRecord``: one finished reply (question, answer, key, checkpoint), kept bounded and for a
limited time so feedback can name the response it is about. ``FeedbackRating``: a thumbs up/down.
``Correction``: a proposed answer; it trains the audience's memory only once an admin approved it
(or the org auto-approves the proposer's role). ``FeedbackSetting``: an org's review policy.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from orgmem.db.base import Base
from orgmem.db.enums import CorrectionStatus, Rating, check_in
from orgmem.db.types import JSONType, UTCDateTime, utcnow


class ResponseRecord(Base):
    """A reply the server produced, for feedback on it; deleted when it expires."""

    __tablename__ = "response_records"
    __table_args__ = (
        UniqueConstraint("response_id", "choice_index"),
        Index("ix_response_records_org_id_created_at", "org_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    response_id: Mapped[str] = mapped_column(String(64))
    choice_index: Mapped[int] = mapped_column(Integer, default=0)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    key_groups: Mapped[list[str]] = mapped_column(JSONType, default=list)
    model: Mapped[str] = mapped_column(String(200))
    audience: Mapped[str] = mapped_column(String(64), default="org")
    checkpoint_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    checkpoint_label: Mapped[str] = mapped_column(String(500))
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class FeedbackRating(Base):
    """A rating of one response (kept after the response record expires: counts need it)."""

    __tablename__ = "feedback_ratings"
    __table_args__ = (
        CheckConstraint(check_in("rating", Rating), name="rating"),
        Index("ix_feedback_ratings_org_id_created_at", "org_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    response_id: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"), nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
    rating: Mapped[str] = mapped_column(String(8))
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    checkpoint_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    correction_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Correction(Base):
    """A proposed answer to a question the model answered; trains only once approved."""

    __tablename__ = "corrections"
    __table_args__ = (
        CheckConstraint(check_in("status", CorrectionStatus), name="status"),
        Index("ix_corrections_org_id_status", "org_id", "status"),
        Index("ix_corrections_proposer_key_id_created_at", "proposer_key_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    audience: Mapped[str] = mapped_column(String(64), default="org")
    status: Mapped[str] = mapped_column(String(16), default=CorrectionStatus.PENDING.value)
    question: Mapped[str] = mapped_column(Text)
    model_answer: Mapped[str] = mapped_column(Text)
    proposed_answer: Mapped[str] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    response_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    answered_by: Mapped[str | None] = mapped_column(String(500), nullable=True)  # checkpoint label
    proposer_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL"), nullable=True
    )
    proposer: Mapped[str] = mapped_column(String(200))
    conflicts: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    reviewed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    review_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    consumed_checkpoint_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def conflicts_with_documents(self) -> bool:
        return bool(self.conflicts)


class FeedbackSetting(Base):
    """An org's review policy: corrections from keys of ``auto_approve_role`` skip the queue."""

    __tablename__ = "feedback_settings"

    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    auto_approve_role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
