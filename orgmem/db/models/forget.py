"""Forget receipts: the durable answer to "what did forgetting this document do, and is it done"."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from orgmem.db.base import Base
from orgmem.db.enums import ObjectDeletion, check_in
from orgmem.db.types import JSONType, UTCDateTime, utcnow


class ForgetReceipt(Base):
    """One forget: the document, the checkpoints it touched, the head move, the objects deleted.

    Written in the forget's own transaction; only the object-deletion fields change afterwards
    (``deletion_status`` goes ``pending`` -> ``done`` once the store no longer holds the objects).
    Checkpoint ids are kept as plain strings: a receipt must outlive anything it names.
    """

    __tablename__ = "forget_receipts"
    __table_args__ = (
        CheckConstraint(check_in("deletion_status", ObjectDeletion), name="deletion_status"),
        Index("ix_forget_receipts_org_id_created_at", "org_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    document_id: Mapped[int | None] = mapped_column(
        ForeignKey("documents.id", ondelete="SET NULL"), nullable=True
    )
    document: Mapped[str] = mapped_column(String(1024))
    document_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    source: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    chunks_excluded: Mapped[int] = mapped_column(Integer, default=0)
    saw: Mapped[list[str]] = mapped_column(JSONType, default=list)
    quarantined: Mapped[list[str]] = mapped_column(JSONType, default=list)
    head_before: Mapped[str | None] = mapped_column(String(32), nullable=True)
    head_after: Mapped[str | None] = mapped_column(String(32), nullable=True)
    served_before: Mapped[str | None] = mapped_column(String(32), nullable=True)
    served_after: Mapped[str | None] = mapped_column(String(32), nullable=True)
    replay_job: Mapped[str | None] = mapped_column(String(40), nullable=True)
    deletion_status: Mapped[str] = mapped_column(String(16), default=ObjectDeletion.NONE.value)
    purge_after: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    objects_deleted: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    bytes_deleted: Mapped[int] = mapped_column(BigInteger, default=0)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deletion_error: Mapped[str | None] = mapped_column(Text, nullable=True)
