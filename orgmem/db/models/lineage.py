"""Checkpoint lineage: the tree of checkpoints, their objects, their exact inputs, serving history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from orgmem.db.base import Base
from orgmem.db.enums import CheckpointStatus, InputRole, ServingAction, check_in
from orgmem.db.types import JSONType, UTCDateTime, utcnow


class Checkpoint(Base):
    """An immutable memory state. ``input_digest`` covers the new chunk keys + parent id.

    Uniqueness is (org, input_digest): the digest already contains the parent id, and unlike a
    unique (org, parent, digest) it also deduplicates root checkpoints, whose parent is NULL.
    """

    __tablename__ = "checkpoints"
    __table_args__ = (
        UniqueConstraint("org_id", "input_digest"),
        CheckConstraint(check_in("status", CheckpointStatus), name="status"),
        Index("ix_checkpoints_org_id_created_at", "org_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    # "org", or the group whose material it holds (its own lineage; see AudienceHead)
    audience: Mapped[str] = mapped_column(String(64), default="org", server_default="org")
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("checkpoints.id"), nullable=True, index=True)
    base_model: Mapped[str] = mapped_column(String(500))
    base_fingerprint: Mapped[str] = mapped_column(String(64))
    memory_kind: Mapped[str] = mapped_column(String(32))
    memory_config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=CheckpointStatus.CANDIDATE.value)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    input_digest: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)

    objects: Mapped[list[CheckpointObject]] = relationship(
        back_populates="checkpoint", cascade="all, delete-orphan", order_by="CheckpointObject.name"
    )

    def __repr__(self) -> str:
        return f"Checkpoint({self.id!r}, parent={self.parent_id!r}, status={self.status!r})"


class CheckpointObject(Base):
    """One stored object of a checkpoint, with the checksum verified at upload."""

    __tablename__ = "checkpoint_objects"

    checkpoint_id: Mapped[str] = mapped_column(
        ForeignKey("checkpoints.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    key: Mapped[str] = mapped_column(String(1024), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    # Set once the object is deleted from the store (a forgotten checkpoint's weights); the row
    # stays so the lineage still says what existed and how large it was.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    checkpoint: Mapped[Checkpoint] = relationship(back_populates="objects")


class CheckpointInput(Base):
    """The exact chunks (and their document versions) a checkpoint was trained on."""

    __tablename__ = "checkpoint_inputs"
    __table_args__ = (CheckConstraint(check_in("role", InputRole), name="role"),)

    checkpoint_id: Mapped[str] = mapped_column(
        ForeignKey("checkpoints.id", ondelete="CASCADE"), primary_key=True
    )
    chunk_id: Mapped[int] = mapped_column(ForeignKey("chunks.id"), primary_key=True, index=True)
    document_version_id: Mapped[int] = mapped_column(ForeignKey("document_versions.id"), index=True)
    role: Mapped[str] = mapped_column(String(8), default=InputRole.NEW.value)


class ServingEvent(Base):
    """One change of an org's serving state.

    ``checkpoint_id`` is what the action was about (the pinned, promoted, rolled-back-to,
    rejected or unpinned checkpoint); ``previous_checkpoint_id`` / ``served_checkpoint_id`` are
    what the org served before and after, so ``history --at`` is a single lookup.
    """

    __tablename__ = "serving_events"
    __table_args__ = (
        CheckConstraint(check_in("action", ServingAction), name="action"),
        Index("ix_serving_events_org_id_created_at", "org_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    audience: Mapped[str] = mapped_column(String(64), default="org", server_default="org")
    action: Mapped[str] = mapped_column(String(16))
    checkpoint_id: Mapped[str | None] = mapped_column(ForeignKey("checkpoints.id"), nullable=True)
    previous_checkpoint_id: Mapped[str | None] = mapped_column(ForeignKey("checkpoints.id"), nullable=True)
    served_checkpoint_id: Mapped[str | None] = mapped_column(ForeignKey("checkpoints.id"), nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
