"""What a group consolidation trains on top of: the org's served checkpoint when the job starts.

Serving answers a group key with the org's served memory and the group's memory stacked on it,
so the group memory is trained, and judged by the gate, with that org memory frozen underneath
(``orgmem.engine.underlay``). Which org checkpoint that was goes into the input digest (a retry
trains on the same one; a night after the org moved on trains anew) and into the group
checkpoint's manifest, metrics and notes. While the org serves nothing yet, a group trains on
the bare base, recorded as ``checkpoint_id: None``. The org's own consolidation has no underlay.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from orgmem.checkpoints import MEMORY, load_checkpoint_objects
from orgmem.db.models import Org
from orgmem.lineage.audiences import ORG_AUDIENCE
from orgmem.store.base import ObjectStore, sha256_hex

DIGEST_KEY = "underlay"


def underlay_digest(org: Org, audience: str) -> dict[str, Any]:
    """The digest entry naming what ``audience`` trains on: the org's served checkpoint (groups only)."""
    return {} if audience == ORG_AUDIENCE else {DIGEST_KEY: org.served_checkpoint_id}


def load_underlay(session: Session, store: ObjectStore, checkpoint_id: str | None) -> bytes | None:
    """The org checkpoint's memory (checksum-verified), or None for the bare base."""
    if checkpoint_id is None:
        return None
    return load_checkpoint_objects(session, store, checkpoint_id, [MEMORY])[MEMORY]


def underlay_record(checkpoint_id: str | None, memory: bytes | None) -> dict[str, Any]:
    """What a group checkpoint's manifest and metrics say it was trained and evaluated on."""
    return {
        "audience": ORG_AUDIENCE,
        "checkpoint_id": checkpoint_id,
        "memory_sha256": sha256_hex(memory) if memory is not None else None,
        "bare_base": checkpoint_id is None,
    }


def underlay_note(checkpoint_id: str | None) -> str:
    if checkpoint_id is None:
        return "trained on the bare base: the org served no checkpoint"
    return f"trained on top of org checkpoint {checkpoint_id}"
