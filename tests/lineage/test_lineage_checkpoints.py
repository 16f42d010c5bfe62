"""The checkpoint write protocol: objects then rows, idempotency, verified loading, refusals."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from orgmem.checkpoints import (
    MANIFEST,
    MEMORY,
    TRAIN_STATE,
    CheckpointDraft,
    InputRef,
    commit_checkpoint,
    load_checkpoint_objects,
)
from orgmem.checkpoints.read import load_manifest
from orgmem.db.models import AuditEvent, Checkpoint, CheckpointInput, CheckpointObject
from orgmem.errors import ConflictError, IntegrityError, NotFoundError, OrgmemError
from orgmem.lineage import create_org
from orgmem.store.base import ObjectStore, sha256_hex
from tests.lineage_factories import add_chunks, record


@pytest.fixture
def acme(session: Session):
    org = create_org(session, "acme", "Acme", actor="test")
    session.commit()
    return org


def _keys(store: ObjectStore) -> list[str]:
    return [info.key for info in store.list("orgs/")]


def test_commit_stores_objects_then_rows(session: Session, store: ObjectStore, acme) -> None:
    chunks = add_chunks(session, acme, ["alpha", "beta"])
    ck = record(session, store, acme, None, chunks[:1], replay=chunks[1:])
    prefix = f"orgs/acme/checkpoints/{ck.id}/"
    assert _keys(store) == [prefix + MANIFEST, prefix + MEMORY, prefix + TRAIN_STATE]
    rows = {
        o.name: o
        for o in session.scalars(select(CheckpointObject).where(CheckpointObject.checkpoint_id == ck.id))
    }
    assert set(rows) == {MANIFEST, MEMORY, TRAIN_STATE}
    for row in rows.values():
        assert sha256_hex(store.get(row.key)) == row.sha256
    roles = dict(session.execute(select(CheckpointInput.chunk_id, CheckpointInput.role)).all())
    assert roles == {chunks[0].id: "new", chunks[1].id: "replay"}
    manifest = load_manifest(session, store, ck.id)
    assert manifest["checkpoint_id"] == ck.id and manifest["org"] == "acme" and manifest["parent_id"] is None
    assert manifest["objects"][MEMORY]["sha256"] == rows[MEMORY].sha256
    assert manifest["note"] == "test" and manifest["memory_kind"] == "cms"
    assert ck.id.startswith("ck_") and len(ck.id) == 15
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.target == ck.id)) == 1


def test_same_inputs_same_parent_is_idempotent(session: Session, store: ObjectStore, acme) -> None:
    chunks = add_chunks(session, acme, ["alpha", "beta"])
    first = record(session, store, acme, None, chunks)
    before = _keys(store)
    again = record(session, store, acme, None, list(reversed(chunks)), replay=[])
    assert again.id == first.id
    assert _keys(store) == before  # nothing written
    assert session.scalar(select(func.count()).select_from(Checkpoint)) == 1
    other = record(session, store, acme, first.id, chunks)  # same chunks, other parent: a new checkpoint
    assert other.id != first.id


def test_load_verifies_checksums(session: Session, store: ObjectStore, acme) -> None:
    ck = record(session, store, acme, None, add_chunks(session, acme, ["alpha"]))
    objects = load_checkpoint_objects(session, store, ck.id)
    assert objects[MEMORY].startswith(b"memory:")
    key = f"orgs/acme/checkpoints/{ck.id}/{MEMORY}"
    store.put(key, b"tampered")
    with pytest.raises(IntegrityError, match=f"{ck.id}.*{MEMORY}.*corrupt"):
        load_checkpoint_objects(session, store, ck.id, [MEMORY])
    store.delete(key)
    with pytest.raises(NotFoundError, match=f"{ck.id}.*{MEMORY}.*missing.*{key}"):
        load_checkpoint_objects(session, store, ck.id, [MEMORY])
    with pytest.raises(NotFoundError, match="no object"):
        load_checkpoint_objects(session, store, ck.id, ["nope.bin"])
    with pytest.raises(NotFoundError, match="ck_missing"):
        load_checkpoint_objects(session, store, "ck_missing")


def _commit(session, store, org, **overrides):
    args = dict(
        parent_id=None,
        objects={MEMORY: b"m"},
        manifest={},
        inputs=[],
        metrics={},
        created_by="t",
        base_model="b",
        base_fingerprint="f",
        memory_kind="cms",
    )
    args.update(overrides)
    return commit_checkpoint(session, store, CheckpointDraft(org=org, **args))


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"objects": {"../escape": b"x"}}, OrgmemError, "object name '../escape'"),
        ({"objects": {MANIFEST: b"{}"}}, OrgmemError, "reserved"),
        ({"manifest": {"checkpoint_id": "x"}}, OrgmemError, "reserved"),
        ({"status": "quarantined"}, OrgmemError, "cannot start as 'quarantined'"),
        ({"status": "bogus"}, OrgmemError, "status 'bogus'"),
        ({"inputs": [987654]}, NotFoundError, r"chunks \[987654\]"),
        ({"parent_id": "ck_nothere"}, NotFoundError, "ck_nothere"),
        ({"inputs": [InputRef(1), InputRef(1, "replay")]}, OrgmemError, "both as new and as replay"),
    ],
)
def test_bad_commits_write_nothing(session, store, acme, overrides, error, message) -> None:
    add_chunks(session, acme, ["alpha"])
    with pytest.raises(error, match=message):
        _commit(session, store, acme, **overrides)
    session.rollback()
    assert _keys(store) == []
    assert session.scalar(select(func.count()).select_from(Checkpoint)) == 0


def test_other_orgs_chunks_and_parents_are_refused(session: Session, store: ObjectStore, acme) -> None:
    globex = create_org(session, "globex", actor="test")
    foreign_chunk = add_chunks(session, globex, ["theirs"])[0]
    foreign_ck = record(session, store, globex, None, [foreign_chunk])
    before = _keys(store)
    with pytest.raises(ConflictError, match="another org than 'acme'"):
        _commit(session, store, acme, inputs=[foreign_chunk.id])
    with pytest.raises(ConflictError, match=f"{foreign_ck.id}.*belongs to org 'globex', not 'acme'"):
        _commit(session, store, acme, parent_id=foreign_ck.id)
    assert _keys(store) == before


def test_promoted_commit_moves_head_and_consumes(session: Session, store: ObjectStore, acme) -> None:
    chunks = add_chunks(session, acme, ["alpha", "beta"])
    root = record(session, store, acme, None, chunks[:1], status="promoted")
    session.refresh(acme)
    assert acme.head_checkpoint_id == root.id and root.status == "promoted"
    assert list(session.scalars(select(Checkpoint.status))) == ["promoted"]
    session.refresh(chunks[0])
    session.refresh(chunks[1])
    assert (chunks[0].status, chunks[1].status) == ("consumed", "pending")
    with pytest.raises(ConflictError, match="head is"):
        record(session, store, acme, None, chunks[1:], status="promoted")  # not built on the head
    assert len(json.loads(store.get(f"orgs/acme/checkpoints/{root.id}/{MANIFEST}"))["objects"]) == 2
