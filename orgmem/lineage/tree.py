"""Reading the checkpoint tree of an org: look-ups, ancestry, and the listing shown by the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from orgmem.db.models import Checkpoint, Org
from orgmem.errors import ConflictError, IntegrityError, NotFoundError
from orgmem.lineage.audiences import head_holder


def get_checkpoint(session: Session, checkpoint_id: str, org: Org | None = None) -> Checkpoint:
    """The checkpoint ``checkpoint_id``; with ``org``, refuse one that belongs to another org."""
    checkpoint = session.get(Checkpoint, checkpoint_id)
    if checkpoint is None:
        where = f" (org {org.slug!r})" if org is not None else ""
        raise NotFoundError(f"checkpoint {checkpoint_id!r} not found{where}")
    if org is not None and checkpoint.org_id != org.id:
        owner = session.get(Org, checkpoint.org_id)
        raise ConflictError(
            f"checkpoint {checkpoint_id!r} belongs to org {owner.slug if owner else '?'!r}, not {org.slug!r}"
        )
    return checkpoint


def parent_map(session: Session, org: Org) -> dict[str, str | None]:
    """id -> parent id for every checkpoint of ``org`` (one query; trees are walked in Python)."""
    rows = session.execute(select(Checkpoint.id, Checkpoint.parent_id).where(Checkpoint.org_id == org.id))
    return {ck_id: parent for ck_id, parent in rows}


def ancestry(parents: dict[str, str | None], checkpoint_id: str | None) -> list[str]:
    """``checkpoint_id`` and its ancestors, nearest first; empty for None."""
    chain: list[str] = []
    current = checkpoint_id
    while current is not None:
        if current in chain:
            raise IntegrityError(f"checkpoint lineage has a cycle at {current!r}")
        chain.append(current)
        current = parents.get(current)
    return chain


def descendants(parents: dict[str, str | None], checkpoint_id: str) -> set[str]:
    """Every checkpoint whose ancestry contains ``checkpoint_id`` (excluding itself)."""
    return {ck for ck in parents if ck != checkpoint_id and checkpoint_id in ancestry(parents, ck)}


@dataclass(frozen=True)
class TreeNode:
    """One line of ``orgmem checkpoints ORG``."""

    checkpoint: Checkpoint
    depth: int
    is_head: bool
    is_pinned: bool
    is_served: bool
    on_head_lineage: bool

    def as_dict(self) -> dict[str, object]:
        ck = self.checkpoint
        return {
            "id": ck.id,
            "audience": ck.audience,
            "parent_id": ck.parent_id,
            "depth": self.depth,
            "status": ck.status,
            "created_at": ck.created_at.isoformat(),
            "created_by": ck.created_by,
            "memory_kind": ck.memory_kind,
            "metrics": ck.metrics,
            "head": self.is_head,
            "pinned": self.is_pinned,
            "served": self.is_served,
            "on_head_lineage": self.on_head_lineage,
        }


def list_tree(session: Session, org: Org, audience: str = "org") -> list[TreeNode]:
    """``audience``'s checkpoints depth-first (children oldest first), each with its depth and markers."""
    checkpoints = list(
        session.scalars(
            select(Checkpoint)
            .where(Checkpoint.org_id == org.id, Checkpoint.audience == audience)
            .order_by(Checkpoint.created_at, Checkpoint.id)
        )
    )
    holder = head_holder(session, org, audience)
    head = holder.head_checkpoint_id if holder is not None else None
    pinned = holder.pinned_checkpoint_id if holder is not None else None
    served = pinned or head
    children: dict[str | None, list[Checkpoint]] = {}
    known = {ck.id for ck in checkpoints}
    for ck in checkpoints:
        children.setdefault(ck.parent_id if ck.parent_id in known else None, []).append(ck)
    head_line = set(ancestry({ck.id: ck.parent_id for ck in checkpoints}, head))
    nodes: list[TreeNode] = []
    stack = [(ck, 0) for ck in reversed(children.get(None, []))]
    while stack:
        ck, depth = stack.pop()
        nodes.append(
            TreeNode(
                checkpoint=ck,
                depth=depth,
                is_head=ck.id == head,
                is_pinned=ck.id == pinned,
                is_served=ck.id == served,
                on_head_lineage=ck.id in head_line,
            )
        )
        stack.extend((child, depth + 1) for child in reversed(children.get(ck.id, [])))
    return nodes
