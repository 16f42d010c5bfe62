"""Lineage operations on orgs and their checkpoint trees (library behind the CLI and the API).

Functions take a SQLAlchemy session, flush, and leave the commit to the caller.
"""

from orgmem.lineage.audit import default_actor, record_audit
from orgmem.lineage.chunks import ChunkStatusChange, sync_chunk_status
from orgmem.lineage.history import ServedAt, event_dict, served_at, serving_history
from orgmem.lineage.orgs import create_org, get_org, list_orgs, resolve_org, validate_slug
from orgmem.lineage.transitions import ServingChange, pin, promote, quarantine, reject, rollback, unpin
from orgmem.lineage.tree import TreeNode, ancestry, descendants, get_checkpoint, list_tree, parent_map

__all__ = [
    "ChunkStatusChange",
    "ServedAt",
    "ServingChange",
    "TreeNode",
    "ancestry",
    "create_org",
    "default_actor",
    "descendants",
    "event_dict",
    "get_checkpoint",
    "get_org",
    "list_orgs",
    "list_tree",
    "parent_map",
    "pin",
    "promote",
    "quarantine",
    "record_audit",
    "reject",
    "resolve_org",
    "rollback",
    "served_at",
    "serving_history",
    "sync_chunk_status",
    "unpin",
    "validate_slug",
]
