"""Where each group audience of an org trains from and what it serves.

The org audience keeps its head and pin on ``Org`` itself (everything before audiences reads
them there); every other audience (a group such as ``eng`` or ``slack-private:plans``) has its
own checkpoint lineage, whose tip and pin live in one row here. A row appears with the group's
first checkpoint; an audience without a row has served nothing yet.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from orgmem.db.base import Base
from orgmem.db.types import UTCDateTime, utcnow


class AudienceHead(Base):
    """Head and pin of one group; ``Org``'s attribute names, so lineage code treats both alike."""

    __tablename__ = "audience_heads"

    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    audience: Mapped[str] = mapped_column(String(64), primary_key=True)
    head_checkpoint_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("checkpoints.id", ondelete="SET NULL"), nullable=True
    )
    pinned_checkpoint_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("checkpoints.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def served_checkpoint_id(self) -> str | None:
        return self.pinned_checkpoint_id or self.head_checkpoint_id

    def __repr__(self) -> str:
        return f"AudienceHead(org={self.org_id}, {self.audience!r}, head={self.head_checkpoint_id!r})"
