"""Keep chunk status equal to "is it in the memory its audience continues from".

A chunk is *consumed* when it is an input of its audience's head checkpoint (the org's head for
``org`` material, the group's head for a group's) or of one of its ancestors, and *pending*
otherwise (excluded chunks are never touched). Each audience is synced on its own lineage.
Recomputing from the lineage after every head move makes rollback exact: data consumed only by
an abandoned branch becomes pending again, data also consumed on the kept lineage stays consumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from orgmem.db.enums import ChunkStatus
from orgmem.db.models import CheckpointInput, Chunk, Org
from orgmem.lineage.audiences import ORG_AUDIENCE, audience_chunk_ids, head_holder
from orgmem.lineage.tree import ancestry, parent_map


@dataclass(frozen=True)
class ChunkStatusChange:
    to_pending: int
    to_consumed: int


def sync_chunk_status(session: Session, org: Org, audience: str = ORG_AUDIENCE) -> ChunkStatusChange:
    """Recompute the status of ``audience``'s chunks from that audience's head lineage."""
    session.flush()
    holder = head_holder(session, org, audience)
    head = holder.head_checkpoint_id if holder is not None else None
    lineage = ancestry(parent_map(session, org), head)
    in_lineage = select(CheckpointInput.chunk_id).where(CheckpointInput.checkpoint_id.in_(lineage))
    mine = Chunk.id.in_(audience_chunk_ids(org, audience))
    to_pending = cast(CursorResult, session.execute(
        update(Chunk)
        .where(
            Chunk.org_id == org.id,
            Chunk.status == ChunkStatus.CONSUMED.value,
            mine,
            Chunk.id.not_in(in_lineage),
        )
        .values(status=ChunkStatus.PENDING.value)
        .execution_options(synchronize_session="fetch")
    )).rowcount  # an UPDATE's result is a cursor result
    to_consumed = cast(CursorResult, session.execute(
        update(Chunk)
        .where(
            Chunk.org_id == org.id, Chunk.status == ChunkStatus.PENDING.value, mine, Chunk.id.in_(in_lineage)
        )
        .values(status=ChunkStatus.CONSUMED.value)
        .execution_options(synchronize_session="fetch")
    )).rowcount  # an UPDATE's result is a cursor result
    return ChunkStatusChange(to_pending=to_pending or 0, to_consumed=to_consumed or 0)
