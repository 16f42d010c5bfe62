"""Remove orphan checkpoint objects: stored, but referenced by no committed row.

Orphans come from failed or killed commits (see ``write.py``). Only keys of the checkpoint
layout ``orgs/<org>/checkpoints/<id>/<name>`` are considered, and a folder is removed only when
its manifest (always uploaded first) is older than the grace period, so a commit in flight is
never touched. A folder without a readable manifest cannot be in flight (the manifest comes
first), so it counts as old; its manifest, if any, is deleted last.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from tqdm import tqdm

from orgmem.checkpoints.layout import MANIFEST, parse_object_key
from orgmem.db.models import CheckpointObject
from orgmem.db.types import utcnow
from orgmem.errors import OrgmemError
from orgmem.store.base import ObjectStore

logger = logging.getLogger(__name__)

DEFAULT_GRACE = timedelta(hours=1)


@dataclass
class GcReport:
    dry_run: bool
    grace_seconds: float
    removed: list[str] = field(default_factory=list)  # keys removed (or that would be, in a dry run)
    kept_recent: list[str] = field(default_factory=list)  # orphan keys younger than the grace period
    referenced: int = 0
    bytes_removed: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "grace_seconds": self.grace_seconds,
            "removed": self.removed,
            "kept_recent": self.kept_recent,
            "referenced_objects": self.referenced,
            "bytes_removed": self.bytes_removed,
        }


def _folder_created_at(store: ObjectStore, prefix: str) -> datetime | None:
    try:
        created = json.loads(store.get(prefix + MANIFEST))["created_at"]
        return datetime.fromisoformat(created)
    except (OrgmemError, ValueError, KeyError, TypeError):
        return None


def collect_garbage(
    session: Session,
    store: ObjectStore,
    *,
    grace: timedelta = DEFAULT_GRACE,
    dry_run: bool = False,
    now: datetime | None = None,
) -> GcReport:
    now = now or utcnow()
    report = GcReport(dry_run=dry_run, grace_seconds=grace.total_seconds())
    # Listing the store before reading the rows: a commit that lands in between only makes its
    # objects look orphaned, and those are younger than the grace period.
    listed = store.list("orgs/")
    referenced = set(session.scalars(select(CheckpointObject.key)))
    session.commit()
    report.referenced = len(referenced)
    folders: dict[str, list[tuple[str, int]]] = {}
    for info in listed:
        parsed = parse_object_key(info.key)
        if parsed is not None and info.key not in referenced:
            folders.setdefault(parsed.prefix, []).append((info.key, info.size))
    for prefix, objects in tqdm(sorted(folders.items()), desc="gc", unit="folder", disable=len(folders) < 20):
        created = _folder_created_at(store, prefix)
        if created is not None and now - created < grace:
            report.kept_recent.extend(key for key, _ in objects)
            continue
        # the manifest goes last, so an interrupted gc still finds the folder's age next time
        for key, size in sorted(objects, key=lambda item: item[0].endswith("/" + MANIFEST)):
            if not dry_run:
                store.delete(key)
            report.removed.append(key)
            report.bytes_removed += size
        logger.info(
            "orphan checkpoint folder" + (" (dry run)" if dry_run else " removed"),
            extra={"prefix": prefix, "objects": len(objects)},
        )
    return report
