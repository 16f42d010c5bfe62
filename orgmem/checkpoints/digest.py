"""The idempotency key of a checkpoint: what it was trained on and from where.

Only the *new* chunks count (replayed chunks are a sample the consolidator may draw differently
on a retry); together with the parent id this identifies "the same consolidation run again".
``extra`` lets a caller add what else must make a run distinct (e.g. a changed memory config).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any


def input_digest(
    new_chunk_keys: Iterable[str], parent_id: str | None, extra: Mapping[str, Any] | None = None
) -> str:
    payload = {"parent": parent_id, "chunks": sorted(set(new_chunk_keys)), "extra": dict(extra or {})}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
