"""Keep chunk status equal to "is it in the memory the org continues from".

A chunk is *consumed* when it is an input of the org's head checkpoint or of one of its
ancestors, and *pending* otherwise (excluded chunks are never touched). Recomputing from the
lineage after every head move makes rollback exact: data consumed only by an abandoned branch
becomes pending again, data also consumed on the kept lineage stays consumed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from orgmem.db.enums import ChunkStatus
from orgmem.db.models import CheckpointInput, Chunk, Org
from orgmem.lineage.tree import ancestry, parent_map


@dataclass(frozen=True)
class ChunkStatusChange:
    to_pending: int
    to_consumed: int


def sync_chunk_status(session: Session, org: Org) -> ChunkStatusChange:
    session.flush()
    lineage = ancestry(parent_map(session, org), org.head_checkpoint_id)
    in_lineage = select(CheckpointInput.chunk_id).where(CheckpointInput.checkpoint_id.in_(lineage))
    to_pending = session.execute(
        update(Chunk)
        .where(
            Chunk.org_id == org.id, Chunk.status == ChunkStatus.CONSUMED.value, Chunk.id.not_in(in_lineage)
        )
        .values(status=ChunkStatus.PENDING.value)
        .execution_options(synchronize_session="fetch")
    ).rowcount
    to_consumed = session.execute(
        update(Chunk)
        .where(Chunk.org_id == org.id, Chunk.status == ChunkStatus.PENDING.value, Chunk.id.in_(in_lineage))
        .values(status=ChunkStatus.CONSUMED.value)
        .execution_options(synchronize_session="fetch")
    ).rowcount
    return ChunkStatusChange(to_pending=to_pending or 0, to_consumed=to_consumed or 0)
