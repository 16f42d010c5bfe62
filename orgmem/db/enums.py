"""The closed vocabularies stored in string columns (and enforced by CHECK constraints)."""

from __future__ import annotations

from enum import StrEnum


class ChunkStatus(StrEnum):
    PENDING = "pending"  # not yet in the memory of the org's head checkpoint
    CONSUMED = "consumed"  # an input of the head checkpoint or one of its ancestors
    EXCLUDED = "excluded"  # never to be trained on (forgotten, governance)


class CheckpointStatus(StrEnum):
    CANDIDATE = "candidate"
    PROMOTED = "promoted"
    REJECTED = "rejected"
    QUARANTINED = "quarantined"


class ObjectDeletion(StrEnum):
    """Where a forget receipt stands on deleting the quarantined checkpoints' stored objects."""

    NONE = "none"  # nothing was quarantined, so nothing to delete
    PENDING = "pending"  # waiting for the grace period, or for a retry after a store failure
    DONE = "done"  # every object of every quarantined checkpoint is gone from the store


class InputRole(StrEnum):
    NEW = "new"  # consumed for the first time by this checkpoint
    REPLAY = "replay"  # an older chunk replayed to keep old knowledge


class ServingAction(StrEnum):
    PIN = "pin"
    UNPIN = "unpin"
    PROMOTE = "promote"
    FORCE_PROMOTE = "force_promote"
    ROLLBACK = "rollback"
    REJECT = "reject"
    QUARANTINE = "quarantine"


class ApiKeyRole(StrEnum):
    ADMIN = "admin"
    EMPLOYEE = "employee"


class Rating(StrEnum):
    UP = "up"
    DOWN = "down"


class CorrectionStatus(StrEnum):
    PENDING = "pending"  # waiting for an admin's review; never trained on
    APPROVED = "approved"  # reviewed (or auto-approved): material of the audience's next consolidation
    REJECTED = "rejected"  # never trained on
    CONSUMED = "consumed"  # trained into ``consumed_checkpoint_id``


class JobKind(StrEnum):
    SYNC = "sync"
    CONSOLIDATE = "consolidate"
    FORGET = "forget"
    META_TRAIN = "meta_train"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


def check_in(column: str, values: type[StrEnum]) -> str:
    """SQL text for a CHECK constraint limiting ``column`` to an enum's values."""
    allowed = ", ".join(f"'{v.value}'" for v in values)
    return f"{column} IN ({allowed})"
