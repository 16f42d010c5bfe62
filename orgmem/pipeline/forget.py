"""Forget a document: no served or future memory may have been trained on it.

Every checkpoint that consumed one of the document's chunks (as new or replayed input) is
*tainted*, and so is every descendant (its weights started from a tainted one). The org's head
moves back to the parent of the oldest tainted checkpoint on its lineage (or to no checkpoint at
all when the first one saw it), every tainted checkpoint is quarantined (a pin on one is
removed), and the document's chunks are excluded from training for good. The rest of the
abandoned material becomes pending again, and a consolidation replays it without the document.
All of it happens in one transaction, with its receipt: a refused or failed forget changes
nothing. The quarantined checkpoints' objects are deleted from the store after the commit (at
once, or once ``ORGMEM_FORGET_GRACE_HOURS`` have passed; see ``orgmem.pipeline.purge``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from orgmem.db.enums import CheckpointStatus, ChunkStatus, ObjectDeletion, ServingAction
from orgmem.db.models import (
    Checkpoint,
    CheckpointInput,
    Chunk,
    Document,
    DocumentVersion,
    ForgetReceipt,
    Org,
    Source,
)
from orgmem.db.session import begin_write, get_row
from orgmem.db.types import new_id, row_id, utcnow
from orgmem.errors import ConflictError, NotFoundError
from orgmem.jobs.lease import live_org_holder
from orgmem.lineage import ancestry, descendants, get_org, parent_map, quarantine, record_audit, rollback
from orgmem.lineage.audiences import HeadHolder, head_holder
from orgmem.lineage.chunks import sync_chunk_status
from orgmem.lineage.transitions import serving_event
from orgmem.pipeline.purge import forget_grace, purge_receipt
from orgmem.store.base import ObjectStore

logger = logging.getLogger(__name__)


@dataclass
class ForgetResult:
    org: str
    document_id: int
    document: str
    chunks_excluded: int
    saw: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    head_before: str | None = None
    head_after: str | None = None
    replay_job: str | None = None
    receipt_id: str | None = None
    deletion_status: str = ObjectDeletion.NONE.value

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def receipt(self) -> str:
        """The receipt's id, which ``forget_document`` writes before it returns."""
        if self.receipt_id is None:
            raise RuntimeError(f"the forget of {self.document!r} returned before writing its receipt")
        return self.receipt_id


def find_document(session: Session, org: Org, ref: str | int) -> Document:
    """A document of ``org`` by numeric id, external id (path, message ts, URL) or URI.

    An ``int`` is only ever a document id (what sync passes for its tombstones).
    """
    if isinstance(ref, int):
        doc = session.get(Document, ref)
        if doc is None or doc.org_id != org.id:
            raise NotFoundError(f"org {org.slug!r} has no document with id {ref}")
        return doc
    query = select(Document).where(Document.org_id == org.id)
    match = or_(Document.external_id == ref, Document.uri == ref)
    if row_id(ref) is not None:
        match = or_(match, Document.id == row_id(ref))
    found = list(session.scalars(query.where(match)))
    if not found:
        raise NotFoundError(
            f"org {org.slug!r} has no document {ref!r} (give its id, path/external id or URI)"
        )
    if len(found) > 1:
        ids = ", ".join(str(d.id) for d in found)
        raise ConflictError(
            f"{ref!r} matches {len(found)} documents of org {org.slug!r} (ids {ids}); give the id"
        )
    return found[0]


def _tainted(session: Session, org: Org, chunk_ids: list[int]) -> tuple[list[str], set[str]]:
    saw = sorted(
        set(
            session.scalars(
                select(CheckpointInput.checkpoint_id).where(CheckpointInput.chunk_id.in_(chunk_ids))
            )
        )
    )
    parents = parent_map(session, org)
    tainted = set(saw)
    for ck in saw:
        tainted |= descendants(parents, ck)
    return saw, tainted


def _reset_head(
    session: Session, org: Org, holder: HeadHolder, audience: str, actor: str, reason: str
) -> None:
    """Roll back to before the first checkpoint (lineage.rollback needs a target checkpoint)."""
    previous = holder.served_checkpoint_id
    holder.head_checkpoint_id = None
    session.add(serving_event(org, holder, ServingAction.ROLLBACK, None, previous, actor, reason))
    record_audit(
        session,
        org_id=org.id,
        actor=actor,
        action="serving.rollback",
        target=None,
        data={"previous": previous, "served": holder.served_checkpoint_id, "head": None,
              "audience": audience},  # fmt: skip
    )
    sync_chunk_status(session, org, audience)


def _move_heads_before(session: Session, org: Org, tainted: set[str], actor: str, reason: str) -> None:
    """For the org and every group whose head lineage holds a tainted checkpoint: roll back past it."""
    audiences = sorted({get_row(session, Checkpoint, ck).audience for ck in tainted})
    for audience in audiences:
        holder = head_holder(session, org, audience, for_update=True)
        if holder is None or holder.head_checkpoint_id is None:
            continue
        line = ancestry(parent_map(session, org), holder.head_checkpoint_id)  # head first, root last
        on_line = [ck for ck in line if ck in tainted]
        if not on_line:
            continue
        target = get_row(session, Checkpoint, on_line[-1]).parent_id
        if target is None:
            _reset_head(session, org, holder, audience, actor, reason)
        else:
            rollback(session, org, target, actor=actor, reason=reason)


def forget_document(
    session: Session,
    org_slug: str,
    ref: str | int,
    *,
    actor: str,
    reason: str | None = None,
    store: ObjectStore | None = None,
) -> ForgetResult:
    """Roll back past, quarantine, and exclude everything trained on document ``ref``. Commits.

    The receipt is committed with the forget; with no grace period the quarantined objects are
    deleted right after (``store``, default the configured one), and a store failure leaves the
    receipt ``pending`` for ``orgmem store gc`` instead of failing the forget.
    """
    begin_write(session)
    org = get_org(session, org_slug, for_update=True)
    doc = find_document(session, org, ref)
    busy = live_org_holder(session, org.id)  # a holder that died on this machine frees it
    if busy is not None:
        raise ConflictError(
            f"org {org_slug!r} is being consolidated by job {busy.id!r}, which may be training on "
            f"{doc.external_id!r}: cancel it (`orgmem jobs cancel {busy.id}`) or wait, then forget"
        )
    versions = select(DocumentVersion.id).where(DocumentVersion.document_id == doc.id)
    chunk_ids = list(session.scalars(select(Chunk.id).where(Chunk.document_version_id.in_(versions))))
    saw, tainted = _tainted(session, org, chunk_ids)
    why = reason or f"forget document {doc.external_id!r}"
    result = ForgetResult(
        org_slug, doc.id, doc.external_id, len(chunk_ids), saw, head_before=org.head_checkpoint_id
    )
    served_before = org.served_checkpoint_id
    _move_heads_before(session, org, tainted, actor, why)
    for ck_id in sorted(tainted):
        if get_row(session, Checkpoint, ck_id).status != CheckpointStatus.QUARANTINED.value:
            quarantine(session, org, ck_id, actor=actor, reason=why)
            result.quarantined.append(ck_id)
    if chunk_ids:
        session.execute(
            update(Chunk)
            .where(Chunk.id.in_(chunk_ids))
            .values(status=ChunkStatus.EXCLUDED.value)
            .execution_options(synchronize_session="fetch")
        )
    result.head_after = org.head_checkpoint_id
    receipt = _receipt(session, org, doc, result, actor=actor, reason=reason, served_before=served_before)
    result.receipt_id, result.deletion_status = receipt.id, receipt.deletion_status
    record_audit(
        session,
        org_id=org.id,
        actor=actor,
        action="document.forget",
        target=doc.external_id,
        data={
            "document_id": doc.id,
            "chunks": len(chunk_ids),
            "quarantined": result.quarantined,
            "head": result.head_after,
            "receipt": receipt.id,
            "reason": reason,
        },
    )
    session.commit()
    due = receipt.purge_after is not None and receipt.purge_after <= utcnow()
    if receipt.deletion_status == ObjectDeletion.PENDING.value and due:
        result.deletion_status = _purge_now(session, store, receipt.id)
    logger.warning(
        "document forgotten",
        extra={
            "org": org_slug,
            "document": doc.external_id,
            "quarantined": result.quarantined,
            "head": result.head_after,
        },
    )
    return result


def _receipt(
    session: Session,
    org: Org,
    doc: Document,
    result: ForgetResult,
    *,
    actor: str,
    reason: str | None,
    served_before: str | None,
) -> ForgetReceipt:
    """The receipt row, in the forget's transaction; deletion is pending only if something was quarantined."""
    pending = bool(result.quarantined)
    receipt = ForgetReceipt(
        id=new_id("fr"),
        org_id=org.id,
        document_id=doc.id,
        document=doc.external_id,
        document_uri=doc.uri,
        source=session.scalar(select(Source.name).where(Source.id == doc.source_id)),
        reason=reason,
        actor=actor,
        created_at=utcnow(),
        chunks_excluded=result.chunks_excluded,
        saw=list(result.saw),
        quarantined=list(result.quarantined),
        head_before=result.head_before,
        head_after=result.head_after,
        served_before=served_before,
        served_after=org.served_checkpoint_id,
        deletion_status=(ObjectDeletion.PENDING if pending else ObjectDeletion.NONE).value,
        purge_after=utcnow() + forget_grace() if pending else None,
        objects_deleted=[],
        bytes_deleted=0,
    )
    session.add(receipt)
    return receipt


def _purge_now(session: Session, store: ObjectStore | None, receipt_id: str) -> str:
    """Delete the quarantined objects now; any failure is recorded on the receipt, never raised."""
    try:
        if store is None:
            from orgmem.store import open_store

            store = open_store()
        return purge_receipt(session, store, receipt_id).deletion_status
    except Exception as exc:
        session.rollback()
        begin_write(session)
        get_row(session, ForgetReceipt, receipt_id).deletion_error = f"{type(exc).__name__}: {exc}"
        session.commit()
        logger.error(
            "forgotten objects not deleted; `orgmem store gc` retries", extra={"receipt": receipt_id}
        )
        return ObjectDeletion.PENDING.value
