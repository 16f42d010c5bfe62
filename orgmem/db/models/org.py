"""Organizations and what hangs directly off them: schedules, API keys, audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from orgmem.db.base import Base
from orgmem.db.enums import ApiKeyRole, check_in
from orgmem.db.types import JSONType, UTCDateTime, utcnow

if TYPE_CHECKING:
    from orgmem.db.models.lineage import Checkpoint


class Org(Base):
    """A tenant. Served checkpoint = pinned if set, else head (the tip training continues from)."""

    __tablename__ = "orgs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    gate_config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # use_alter: orgs and checkpoints reference each other; the FK is added after both exist.
    head_checkpoint_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("checkpoints.id", use_alter=True, ondelete="SET NULL"), nullable=True
    )
    pinned_checkpoint_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("checkpoints.id", use_alter=True, ondelete="SET NULL"), nullable=True
    )

    head: Mapped[Checkpoint | None] = relationship(foreign_keys=[head_checkpoint_id], post_update=True)
    pinned: Mapped[Checkpoint | None] = relationship(foreign_keys=[pinned_checkpoint_id], post_update=True)

    @property
    def served_checkpoint_id(self) -> str | None:
        return self.pinned_checkpoint_id or self.head_checkpoint_id

    def __repr__(self) -> str:
        return f"Org({self.slug!r})"


class Schedule(Base):
    """When the nightly loop runs for an org (one schedule per org)."""

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), unique=True)
    cron: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ApiKey(Base):
    """An org-scoped API key; only a hash is stored, the prefix finds the row."""

    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint(check_in("role", ApiKeyRole), name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    key_prefix: Mapped[str] = mapped_column(String(32), index=True)
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    # group audiences whose memories this key is served on top of the org memory
    groups: Mapped[list[str]] = mapped_column(JSONType, default=list, server_default="[]")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuditEvent(Base):
    """Who did what to which thing; org_id is null for installation-wide actions."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_org_id_created_at", "org_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(Text, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
