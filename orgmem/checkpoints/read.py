"""Loading a checkpoint's objects back, verified against the checksums in its rows."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from orgmem.checkpoints.layout import MANIFEST
from orgmem.errors import IntegrityError, NotFoundError
from orgmem.lineage.tree import get_checkpoint
from orgmem.store.base import ObjectNotFoundError, ObjectStore, sha256_hex


def load_checkpoint_objects(
    session: Session, store: ObjectStore, checkpoint_id: str, names: Iterable[str] | None = None
) -> dict[str, bytes]:
    """``{name: bytes}`` for the checkpoint's objects (all, or ``names``), each sha256-verified."""
    checkpoint = get_checkpoint(session, checkpoint_id)
    rows = {obj.name: obj for obj in checkpoint.objects}
    wanted = list(rows) if names is None else list(names)
    unknown = [name for name in wanted if name not in rows]
    if unknown:
        raise NotFoundError(f"checkpoint {checkpoint_id!r} has no object(s) {unknown} (has {sorted(rows)})")
    gone = [name for name in wanted if rows[name].deleted_at is not None]
    if gone:
        when = min(stamp for name in gone if (stamp := rows[name].deleted_at) is not None).isoformat()
        raise NotFoundError(
            f"checkpoint {checkpoint_id!r} ({checkpoint.status}) cannot be loaded: its object(s) {gone} were "
            f"deleted from the store at {when} after a forget (see `orgmem receipts`)"
        )
    out: dict[str, bytes] = {}
    for name in wanted:
        row = rows[name]
        try:
            data = store.get(row.key, expected_sha256=row.sha256)
        except NotFoundError:
            raise ObjectNotFoundError(
                f"checkpoint {checkpoint_id!r} object {name!r} is missing from the store (key {row.key!r})"
            ) from None
        except IntegrityError as exc:
            raise IntegrityError(f"checkpoint {checkpoint_id!r} object {name!r} is corrupt: {exc}") from None
        if sha256_hex(data) != row.sha256 or len(data) != row.size:  # do not trust the backend alone
            raise IntegrityError(
                f"checkpoint {checkpoint_id!r} object {name!r} (key {row.key!r}) is corrupt: expected sha256 "
                f"{row.sha256} / {row.size} bytes, got {sha256_hex(data)} / {len(data)} bytes"
            )
        out[name] = data
    return out


def load_manifest(session: Session, store: ObjectStore, checkpoint_id: str) -> dict[str, Any]:
    data = load_checkpoint_objects(session, store, checkpoint_id, [MANIFEST])[MANIFEST]
    return json.loads(data)
