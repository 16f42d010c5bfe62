"""Delete the stored objects of forgotten (quarantined) checkpoints and close their receipts.

The database goes first, the store second: ``forget`` commits the quarantine and a receipt whose
deletion is ``pending``; only then are objects deleted here, each marked ``deleted_at`` on its
row. A store that fails half-way leaves the receipt ``pending`` with the error, and a later
purge (``orgmem store gc``, the worker) deletes the rest: deleting a missing key is no error, so
a retry is always safe. No database lock is held while the store is called.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from orgmem.checkpoints.layout import MANIFEST
from orgmem.config import get_settings
from orgmem.db.enums import ObjectDeletion
from orgmem.db.models import CheckpointObject, ForgetReceipt
from orgmem.db.session import begin_write
from orgmem.db.types import utcnow
from orgmem.store.base import ObjectStore

logger = logging.getLogger(__name__)


def forget_grace() -> timedelta:
    """How long a forgotten checkpoint's objects stay in the store (``ORGMEM_FORGET_GRACE_HOURS``)."""
    return timedelta(hours=get_settings().forget_grace_hours)


def _live_objects(session: Session, checkpoint_ids: list[str]) -> list[tuple[str, int, str]]:
    """(key, size, checkpoint id) of objects not deleted yet; each checkpoint's manifest last."""
    if not checkpoint_ids:
        return []
    obj = CheckpointObject
    rows = session.execute(
        select(obj.key, obj.size, obj.checkpoint_id, obj.name)
        .where(CheckpointObject.checkpoint_id.in_(checkpoint_ids), CheckpointObject.deleted_at.is_(None))
    ).all()
    rows = sorted(rows, key=lambda r: (r.checkpoint_id, r.name == MANIFEST, r.name))
    return [(r.key, r.size, r.checkpoint_id) for r in rows]


def _delete_all(store: ObjectStore, objects: list[tuple[str, int, str]]) -> tuple[list, str | None]:
    done: list[tuple[str, int, str]] = []
    for key, size, ck in objects:
        try:
            store.delete(key)
        except Exception as exc:  # any store failure: what is done is recorded, the rest retried later
            where = getattr(store, "url", "the store")
            return done, f"deleting {key!r} from {where} failed: {type(exc).__name__}: {exc}"
        done.append((key, size, ck))
    return done, None


def purge_receipt(session: Session, store: ObjectStore, receipt_id: str) -> ForgetReceipt:
    """Delete the objects of the receipt's quarantined checkpoints; ``done`` once none is left. Commits."""
    receipt = session.get(ForgetReceipt, receipt_id)
    if receipt is None:
        raise ValueError(f"forget receipt {receipt_id!r} does not exist")
    if receipt.deletion_status != ObjectDeletion.PENDING.value:
        return receipt
    objects = _live_objects(session, list(receipt.quarantined or []))
    session.commit()  # no lock while the store works
    deleted, error = _delete_all(store, objects)
    begin_write(session)
    now = utcnow()
    if deleted:
        session.execute(
            update(CheckpointObject)
            .where(CheckpointObject.key.in_([key for key, _, _ in deleted]))
            .values(deleted_at=now)
            .execution_options(synchronize_session=False)
        )
    session.refresh(receipt)
    receipt.objects_deleted = [
        *(receipt.objects_deleted or []),
        *({"checkpoint": ck, "key": key, "size": size} for key, size, ck in deleted),
    ]
    receipt.bytes_deleted = (receipt.bytes_deleted or 0) + sum(size for _, size, _ in deleted)
    receipt.deletion_error = error
    if error is None:
        receipt.deletion_status = ObjectDeletion.DONE.value
        receipt.deleted_at = now
    session.commit()
    log = {"receipt": receipt.id, "deleted": len(deleted), "bytes": receipt.bytes_deleted}
    if error:
        logger.error("forgotten checkpoint objects not all deleted: %s", error, extra=log)
    else:
        logger.info("forgotten checkpoint objects deleted", extra=log)
    return receipt


def purge_due(session: Session, store: ObjectStore, *, now: datetime | None = None) -> list[ForgetReceipt]:
    """Purge every pending receipt whose grace has passed (and retry failed ones). Commits."""
    now = now or utcnow()
    due = list(
        session.scalars(
            select(ForgetReceipt.id)
            .where(
                ForgetReceipt.deletion_status == ObjectDeletion.PENDING.value,
                or_(ForgetReceipt.purge_after.is_(None), ForgetReceipt.purge_after <= now),
            )
            .order_by(ForgetReceipt.created_at)
        )
    )
    session.commit()
    return [purge_receipt(session, store, receipt_id) for receipt_id in due]
