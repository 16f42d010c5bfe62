"""Loading what a consolidation starts from, and cleaning what a dead attempt left behind.

- The base model is loaded once per worker process and kept (it is frozen and shared; each job
  attaches its org's memory and detaches it when done).
- The parent's ``memory`` and ``train_state`` objects are read back checksum-verified.
- Objects an earlier attempt uploaded but never committed (the worker was killed, the store went
  away mid-upload) are deleted before a new attempt uploads: the job holds the org's
  consolidation lease, so no other commit for this org can be in flight.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from orgmem.checkpoints import MANIFEST, MEMORY, TRAIN_STATE, load_checkpoint_objects
from orgmem.checkpoints.layout import parse_object_key
from orgmem.db.models import Checkpoint, CheckpointObject
from orgmem.errors import NotFoundError
from orgmem.store.base import ObjectStore

logger = logging.getLogger(__name__)

_bases: dict[tuple[str, str], object] = {}
_bases_lock = threading.Lock()


def shared_base(name: str, device: str | None = None):
    """The frozen base ``name``, loaded on first use in this process."""
    from orgmem.models import load_base

    key = (name, str(device))
    with _bases_lock:
        if key not in _bases:
            _bases[key] = load_base(name, device)
        return _bases[key]


@dataclass(frozen=True)
class ParentState:
    checkpoint_id: str | None
    memory: bytes | None
    train_state: bytes | None
    base_fingerprint: str | None


def load_parent(session: Session, store: ObjectStore, parent_id: str | None) -> ParentState:
    """The parent's memory and train state (verified), or an empty state for a first night."""
    if parent_id is None:
        return ParentState(None, None, None, None)
    parent = session.get(Checkpoint, parent_id)
    if parent is None:
        raise NotFoundError(f"parent checkpoint {parent_id!r} not found")
    names = [n for n in (MEMORY, TRAIN_STATE) if n in {o.name for o in parent.objects}]
    blobs = load_checkpoint_objects(session, store, parent_id, names)
    return ParentState(parent_id, blobs.get(MEMORY), blobs.get(TRAIN_STATE), parent.base_fingerprint)


def remove_uncommitted_objects(session: Session, store: ObjectStore, org_id: int, org_slug: str) -> list[str]:
    """Delete objects under the org's checkpoint prefix that no committed row references.

    Only safe while holding the org's consolidation lease (nothing else writes there then).
    The manifest of a folder goes last, as ``store gc`` expects.
    """
    listed = store.list(f"orgs/{org_slug}/checkpoints/")
    referenced = set(
        session.scalars(
            select(CheckpointObject.key)
            .join(Checkpoint, Checkpoint.id == CheckpointObject.checkpoint_id)
            .where(Checkpoint.org_id == org_id)
        )
    )
    session.commit()
    orphans = [o.key for o in listed if o.key not in referenced and parse_object_key(o.key) is not None]
    for key in sorted(orphans, key=lambda k: k.endswith("/" + MANIFEST)):
        store.delete(key)
    if orphans:
        logger.warning(
            "removed objects of an uncommitted attempt", extra={"org": org_slug, "objects": orphans}
        )
    return orphans
