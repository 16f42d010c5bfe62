"""Checkpoints in the object store: the write protocol, verified loading, orphan collection."""

from orgmem.checkpoints.digest import input_digest
from orgmem.checkpoints.gc import DEFAULT_GRACE, GcReport, collect_garbage
from orgmem.checkpoints.layout import MANIFEST, MEMORY, TRAIN_STATE, checkpoint_prefix, object_key
from orgmem.checkpoints.metrics import CheckpointMetrics
from orgmem.checkpoints.read import load_checkpoint_objects, load_manifest
from orgmem.checkpoints.write import CheckpointDraft, CommitResult, InputRef, commit_checkpoint

__all__ = [
    "DEFAULT_GRACE",
    "MANIFEST",
    "MEMORY",
    "TRAIN_STATE",
    "CheckpointDraft",
    "CheckpointMetrics",
    "CommitResult",
    "GcReport",
    "InputRef",
    "checkpoint_prefix",
    "collect_garbage",
    "commit_checkpoint",
    "input_digest",
    "load_checkpoint_objects",
    "load_manifest",
    "object_key",
]
