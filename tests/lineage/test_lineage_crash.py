"""A failure or a SIGKILL between object upload and row commit leaves no row; gc removes the orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from orgmem.checkpoints import collect_garbage
from orgmem.db.models import Checkpoint, CheckpointInput, CheckpointObject
from orgmem.lineage import create_org
from orgmem.store.base import ObjectStore
from tests.lineage_factories import add_chunks, record

# Runs in a child process: commit a checkpoint, and once its rows are flushed (inside the open
# transaction, objects already uploaded) announce it and wait to be killed.
_CHILD = """
import sys, time
from sqlalchemy import event
from orgmem.db.models import Checkpoint
from orgmem.db.session import session_factory
from orgmem.store import open_store
from tests.lineage_factories import record
from orgmem.db.models import Chunk

session = session_factory()()

def stop_here(sess, ctx):
    if any(isinstance(obj, Checkpoint) for obj in sess.new):
        print("FLUSHED", flush=True)
        time.sleep(120)

event.listen(session, "after_flush", stop_here)
chunks = [session.get(Chunk, int(cid)) for cid in sys.argv[1:]]
record(session, open_store(), "acme", None, chunks)
print("COMMITTED", flush=True)
"""


def _counts(session: Session) -> tuple[int, int, int]:
    session.rollback()
    return tuple(
        session.scalar(select(func.count()).select_from(model))
        for model in (Checkpoint, CheckpointObject, CheckpointInput)
    )  # type: ignore[return-value]


def _orphan_keys(store: ObjectStore, session: Session) -> list[str]:
    referenced = set(session.scalars(select(CheckpointObject.key)))
    return [info.key for info in store.list("orgs/") if info.key not in referenced]


def _assert_gc_removes(session: Session, store: ObjectStore, n: int, keep: list[str]) -> None:
    recent = collect_garbage(session, store, grace=timedelta(hours=1))
    assert recent.removed == [] and len(recent.kept_recent) == n  # young orphans: maybe a commit in flight
    dry = collect_garbage(session, store, grace=timedelta(0), dry_run=True)
    assert len(dry.removed) == n and len(_orphan_keys(store, session)) == n
    done = collect_garbage(session, store, grace=timedelta(0))
    assert sorted(done.removed) == sorted(dry.removed) and done.bytes_removed > 0
    assert _orphan_keys(store, session) == []
    assert sorted(i.key for i in store.list("orgs/")) == sorted(keep)  # committed objects untouched


def test_injected_failure_after_rows_flushed(session: Session, store: ObjectStore) -> None:
    org = create_org(session, "acme", actor="test")
    kept = record(session, store, org, None, add_chunks(session, org, ["old"]), status="promoted")
    keep = [o.key for o in kept.objects]
    chunks = add_chunks(session, org, ["alpha", "beta"])
    before = _counts(session)

    def fail(sess: Session, ctx: object) -> None:
        if any(isinstance(obj, Checkpoint) for obj in sess.new):
            raise RuntimeError("injected: database went away")

    event.listen(session, "after_flush", fail)
    with pytest.raises(RuntimeError, match="injected"):
        record(session, store, org, kept.id, chunks)
    event.remove(session, "after_flush", fail)
    assert _counts(session) == before  # no dangling row
    assert len(_orphan_keys(store, session)) == 3  # manifest, memory, train state
    _assert_gc_removes(session, store, 3, keep)
    retry = record(session, store, org, kept.id, chunks)  # the same commit now goes through
    assert _counts(session) == (before[0] + 1, before[1] + 3, before[2] + 2)
    assert collect_garbage(session, store, grace=timedelta(0)).removed == []
    assert retry.parent_id == kept.id


def test_sigkill_between_upload_and_commit(session: Session, store: ObjectStore, db_url: str) -> None:
    org = create_org(session, "acme", actor="test")
    chunks = add_chunks(session, org, ["alpha", "beta"])
    session.commit()
    before = _counts(session)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": repo, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, *(str(c.id) for c in chunks)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = child.stdout.readline().strip()
        assert line == "FLUSHED", child.stderr.read()
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert _counts(session) == before  # the killed transaction left nothing behind
    assert len(_orphan_keys(store, session)) == 3
    _assert_gc_removes(session, store, 3, [])
    again = record(session, store, org, None, chunks)  # database not left locked or half-written
    assert _counts(session)[0] == before[0] + 1 and again.parent_id is None


def test_gc_touches_only_unreferenced_checkpoint_objects(session: Session, store: ObjectStore) -> None:
    org = create_org(session, "acme", actor="test")
    kept = record(session, store, org, None, add_chunks(session, org, ["old"]))
    store.put("orgs/acme/exports/report.txt", b"not a checkpoint")  # other layouts are not gc's business
    store.put("orgs/acme/checkpoints/ck_nomanifest0/memory.safetensors", b"x")  # left by an interrupted gc
    stray = f"orgs/acme/checkpoints/{kept.id}/stray.bin"
    store.put(stray, b"y")  # in a committed folder, referenced by no row
    report = collect_garbage(session, store, grace=timedelta(hours=1))
    assert sorted(report.removed) == ["orgs/acme/checkpoints/ck_nomanifest0/memory.safetensors"]
    assert report.kept_recent == [stray]  # dated by its folder's manifest: young
    old = collect_garbage(session, store, grace=timedelta(hours=1), now=kept.created_at + timedelta(hours=2))
    assert old.removed == [stray]
    assert store.exists("orgs/acme/exports/report.txt")
    assert all(store.exists(o.key) for o in kept.objects)


class _FailingStore:
    """Wraps a store; the n-th put raises as a lost connection would."""

    def __init__(self, inner: ObjectStore, fail_at: int) -> None:
        self.inner, self.fail_at, self.puts = inner, fail_at, 0

    def put(self, key: str, data: bytes):
        self.puts += 1
        if self.puts == self.fail_at:
            raise ConnectionError(f"store unreachable while writing {key}")
        return self.inner.put(key, data)


def test_upload_failure_leaves_no_row(session: Session, store: ObjectStore) -> None:
    org = create_org(session, "acme", actor="test")
    chunks = add_chunks(session, org, ["alpha"])
    before = _counts(session)
    with pytest.raises(ConnectionError, match="store unreachable"):
        record(session, _FailingStore(store, fail_at=2), org, None, chunks)  # manifest stored, memory not
    assert _counts(session) == before
    assert [k.rsplit("/", 1)[1] for k in _orphan_keys(store, session)] == ["manifest.json"]
    _assert_gc_removes(session, store, 1, [])
