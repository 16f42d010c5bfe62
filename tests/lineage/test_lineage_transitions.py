"""Pin, unpin, promote, reject, quarantine, rollback and history on a small checkpoint tree.

The tree (chunk letters are the *new* inputs of each checkpoint):

    root(a) ── c1(b) ── c2(c, replays a)
                  └──── side(d)            candidate built on c1
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from orgmem.db.models import Checkpoint, Chunk, Org, ServingEvent
from orgmem.db.types import utcnow
from orgmem.errors import ConflictError, NotFoundError
from orgmem.lineage import (
    create_org,
    list_tree,
    pin,
    promote,
    quarantine,
    reject,
    rollback,
    served_at,
    serving_history,
    unpin,
)
from orgmem.store.base import ObjectStore
from tests.lineage_factories import add_chunks, record


@dataclass
class Tree:
    org: Org
    chunks: dict[str, Chunk]
    root: Checkpoint
    c1: Checkpoint
    c2: Checkpoint
    side: Checkpoint


@pytest.fixture
def tree(session: Session, store: ObjectStore) -> Tree:
    org = create_org(session, "acme", actor="test")
    chunks = dict(zip("abcd", add_chunks(session, org, list("abcd")), strict=True))
    root = record(session, store, org, None, [chunks["a"]], status="promoted")
    c1 = record(session, store, org, root.id, [chunks["b"]], status="promoted")
    side = record(session, store, org, c1.id, [chunks["d"]])
    c2 = record(session, store, org, c1.id, [chunks["c"]], replay=[chunks["a"]], status="promoted")
    session.commit()
    return Tree(org, chunks, root, c1, c2, side)


def _status(session: Session, tree: Tree) -> dict[str, str]:
    session.expire_all()
    return {letter: session.get(Chunk, chunk.id).status for letter, chunk in tree.chunks.items()}


def _state(session: Session, org: Org) -> tuple[str | None, str | None, int]:
    session.expire_all()
    fresh = session.get(Org, org.id)
    events = session.scalar(
        select(func.count()).select_from(ServingEvent).where(ServingEvent.org_id == org.id)
    )
    return fresh.head_checkpoint_id, fresh.pinned_checkpoint_id, events


def test_tree_listing_marks_head_and_served(session: Session, tree: Tree) -> None:
    nodes = list_tree(session, tree.org)
    assert [(n.checkpoint.id, n.depth) for n in nodes] == [
        (tree.root.id, 0),
        (tree.c1.id, 1),
        (tree.side.id, 2),
        (tree.c2.id, 2),
    ]
    assert [n.checkpoint.id for n in nodes if n.is_head] == [tree.c2.id]
    assert [n.checkpoint.id for n in nodes if n.is_served] == [tree.c2.id]
    assert {n.checkpoint.id for n in nodes if n.on_head_lineage} == {tree.root.id, tree.c1.id, tree.c2.id}
    assert _status(session, tree) == {"a": "consumed", "b": "consumed", "c": "consumed", "d": "pending"}


def test_pin_and_unpin(session: Session, tree: Tree) -> None:
    change = pin(session, "acme", tree.c1.id, actor="alice", reason="freeze for audit")
    session.commit()
    assert change.event.previous_checkpoint_id == tree.c2.id
    assert change.event.served_checkpoint_id == tree.c1.id
    with pytest.raises(ConflictError, match="already pinned"):
        pin(session, "acme", tree.c1.id, actor="alice")
    session.rollback()
    change = unpin(session, "acme", actor="bob")
    session.commit()
    assert (change.event.checkpoint_id, change.event.served_checkpoint_id) == (tree.c1.id, tree.c2.id)
    with pytest.raises(ConflictError, match="no pinned checkpoint"):
        unpin(session, "acme", actor="bob")


def test_rollback_returns_only_abandoned_data_to_pending(session: Session, tree: Tree) -> None:
    change = rollback(session, "acme", tree.root.id, actor="alice", reason="bad night")
    session.commit()
    assert change.abandoned == (tree.c2.id, tree.c1.id)
    assert change.event.served_checkpoint_id == tree.root.id
    # a was consumed by root (kept) and replayed by c2 (abandoned): it stays consumed
    assert _status(session, tree) == {"a": "consumed", "b": "pending", "c": "pending", "d": "pending"}
    assert change.chunks is not None and change.chunks.to_pending == 2
    assert _state(session, tree.org)[0] == tree.root.id


def test_rollback_keeps_a_pin(session: Session, tree: Tree) -> None:
    pin(session, "acme", tree.c2.id, actor="alice")
    change = rollback(session, "acme", tree.c1.id, actor="alice")
    session.commit()
    assert (change.head_checkpoint_id, change.pinned_checkpoint_id) == (tree.c1.id, tree.c2.id)
    assert change.event.served_checkpoint_id == tree.c2.id


@pytest.mark.parametrize(
    ("target", "error", "message"),
    [
        ("side", ConflictError, "not an ancestor of org 'acme' head"),
        ("c2", ConflictError, "already the head"),
        ("ck_unknown00000", NotFoundError, "ck_unknown00000"),
        ("other", ConflictError, "belongs to org 'globex', not 'acme'"),
    ],
)
def test_refused_rollbacks_change_nothing(session, store, tree: Tree, target, error, message) -> None:
    globex = create_org(session, "globex", actor="test")
    other = record(session, store, globex, None, add_chunks(session, globex, ["z"]))
    ids = {"side": tree.side.id, "c2": tree.c2.id, "other": other.id}
    before, statuses = _state(session, tree.org), _status(session, tree)
    with pytest.raises(error, match=message):
        rollback(session, "acme", ids.get(target, target), actor="alice")
    session.rollback()
    assert _state(session, tree.org) == before
    assert _status(session, tree) == statuses


def test_unknown_org_is_named(session: Session, tree: Tree) -> None:
    with pytest.raises(NotFoundError, match="org 'nope' not found"):
        pin(session, "nope", tree.c1.id, actor="alice")


def test_promotion_rules(session: Session, store: ObjectStore, tree: Tree) -> None:
    reject(session, "acme", tree.side.id, actor="gate", reason="recall 0.1")
    session.commit()
    with pytest.raises(ConflictError, match="only candidates"):
        reject(session, "acme", tree.side.id, actor="gate")
    with pytest.raises(ConflictError, match="rejected; promote it with --force"):
        promote(session, "acme", tree.side.id, actor="alice")
    with pytest.raises(ConflictError, match="only a child of the head"):
        promote(session, "acme", tree.side.id, actor="alice", force=True)  # built on c1, head is c2
    session.rollback()
    rollback(session, "acme", tree.c1.id, actor="alice")
    change = promote(session, "acme", tree.side.id, actor="alice", reason="gate too strict", force=True)
    session.commit()
    assert change.event.action == "force_promote"
    assert _status(session, tree) == {"a": "consumed", "b": "consumed", "c": "pending", "d": "consumed"}


def test_quarantine(session: Session, tree: Tree) -> None:
    with pytest.raises(ConflictError, match="on the head lineage.*roll back"):
        quarantine(session, "acme", tree.c1.id, actor="forget")
    session.rollback()
    pin(session, "acme", tree.c2.id, actor="alice")
    rollback(session, "acme", tree.root.id, actor="forget")
    change = quarantine(session, "acme", tree.c1.id, actor="forget", reason="saw a forgotten doc")
    session.commit()
    assert change.extra == {"unpinned": True}  # c2 descends from c1: it holds the same data
    assert change.event.served_checkpoint_id == tree.root.id
    with pytest.raises(ConflictError, match="quarantined and cannot be pinned"):
        pin(session, "acme", tree.c1.id, actor="alice")
    with pytest.raises(ConflictError, match="quarantined and cannot be promoted"):
        promote(session, "acme", tree.c1.id, actor="alice", force=True)  # its parent is the head again


def test_history_and_served_at(session: Session, tree: Tree) -> None:
    t_before_pin = utcnow()
    pin(session, "acme", tree.c1.id, actor="alice", reason="audit")
    session.commit()
    t_pinned = utcnow()
    rollback(session, "acme", tree.root.id, actor="bob")
    unpin(session, "acme", actor="bob")
    session.commit()
    actions = [(e.action, e.served_checkpoint_id) for e in serving_history(session, tree.org)]
    assert actions == [
        ("promote", tree.root.id),
        ("promote", tree.c1.id),
        ("promote", tree.c2.id),
        ("pin", tree.c1.id),
        ("rollback", tree.c1.id),
        ("unpin", tree.root.id),
    ]
    assert served_at(session, tree.org, t_before_pin).checkpoint_id == tree.c2.id
    at_pin = served_at(session, tree.org, t_pinned)
    assert (
        at_pin.checkpoint_id == tree.c1.id
        and at_pin.event.actor == "alice"
        and at_pin.event.reason == "audit"
    )
    assert served_at(session, tree.org, utcnow()).checkpoint_id == tree.root.id
    assert served_at(session, tree.org, tree.root.created_at.replace(year=2000)).checkpoint_id is None
