"""Forget receipts and the deletion of forgotten checkpoints' objects: stored with the forget,
objects deleted after the grace (zero: right after the commit), a store failure left ``pending``
for ``orgmem store gc``, and a forgotten checkpoint refusing to load by name."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from orgmem.checkpoints import MEMORY, load_checkpoint_objects
from orgmem.cli.main import app
from orgmem.config import get_settings
from orgmem.db import session_scope
from orgmem.db.models import CheckpointObject, ForgetReceipt
from orgmem.db.types import utcnow
from orgmem.errors import NotFoundError
from orgmem.lineage import get_org
from orgmem.pipeline.forget import forget_document
from orgmem.pipeline.purge import purge_due
from orgmem.store import StoreUnavailableError, open_store
from orgmem.store.file import LocalFolderStore
from tests.lineage_factories import add_chunks, record


@pytest.fixture
def chain(org):
    """root(alpha) ── c1(bravo); head c1."""
    store = open_store()
    with session_scope() as s:
        a, b = add_chunks(s, get_org(s, org), ["alpha", "bravo"])
        root = record(s, store, org, None, [a], status="promoted")
        c1 = record(s, store, org, root.id, [b], status="promoted")
        return {"root": root.id, "c1": c1.id}


def _keys(checkpoint_id: str) -> list[str]:
    with session_scope() as s:
        query = select(CheckpointObject.key).where(CheckpointObject.checkpoint_id == checkpoint_id)
        return list(s.scalars(query))


class FlakyStore(LocalFolderStore):
    """Deletes ``allowed`` objects, then fails like an unreachable S3."""

    def __init__(self, root, allowed: int) -> None:
        super().__init__(root)
        self.allowed = allowed

    def delete(self, key: str) -> None:
        if self.allowed <= 0:
            raise StoreUnavailableError("store unreachable (test)")
        self.allowed -= 1
        super().delete(key)


def test_receipt_is_stored_and_objects_deleted_at_once(org, chain):
    store, keys = open_store(), _keys(chain["c1"])
    assert len(keys) == 3 and all(store.exists(k) for k in keys)
    with session_scope() as s:
        result = forget_document(s, org, "bravo.md", actor="alice", reason="GDPR 12")
    with session_scope() as s:
        receipt = s.get(ForgetReceipt, result.receipt_id)
        assert (receipt.document, receipt.actor, receipt.reason) == ("bravo.md", "alice", "GDPR 12")
        assert receipt.saw == receipt.quarantined == [chain["c1"]]
        assert (receipt.head_before, receipt.head_after) == (chain["c1"], chain["root"])
        assert (receipt.served_before, receipt.served_after) == (chain["c1"], chain["root"])
        assert receipt.deletion_status == "done" and receipt.deleted_at is not None
        assert sorted(o["key"] for o in receipt.objects_deleted) == sorted(keys)
        assert receipt.bytes_deleted == sum(o["size"] for o in receipt.objects_deleted) > 0
        refusal = rf"checkpoint '{chain['c1']}' \(quarantined\) cannot be loaded.*deleted from the store"
        with pytest.raises(NotFoundError, match=refusal):
            load_checkpoint_objects(s, store, chain["c1"], [MEMORY])
        assert load_checkpoint_objects(s, store, chain["root"], [MEMORY])[MEMORY], "the ancestor is intact"
    assert not any(store.exists(k) for k in keys)


def test_store_failure_leaves_pending_and_gc_finishes(org, chain):
    root = get_settings().store_url.removeprefix("file://")
    keys = _keys(chain["c1"])
    with session_scope() as s:
        result = forget_document(s, org, "bravo.md", actor="alice", store=FlakyStore(root, allowed=1))
    assert result.deletion_status == "pending" and result.head_after == chain["root"], "the forget stands"
    with session_scope() as s:
        receipt = s.get(ForgetReceipt, result.receipt_id)
        assert receipt.deletion_status == "pending" and "store unreachable" in receipt.deletion_error
        assert len(receipt.objects_deleted) == 1
    assert sum(open_store().exists(k) for k in keys) == 2

    gc = CliRunner().invoke(app, ["store", "gc", "--json"])
    assert gc.exit_code == 0, gc.stderr
    (done,) = json.loads(gc.stdout)["forget_receipts"]
    assert done == {"id": result.receipt_id, "status": "done", "objects": 3,
                    "bytes": done["bytes"], "error": None}
    assert not any(open_store().exists(k) for k in keys)


def test_grace_period_keeps_objects_until_due(org, chain, monkeypatch):
    monkeypatch.setenv("ORGMEM_FORGET_GRACE_HOURS", "24")
    get_settings.cache_clear()
    store, keys = open_store(), _keys(chain["c1"])
    with session_scope() as s:
        result = forget_document(s, org, "bravo.md", actor="alice")
    assert result.deletion_status == "pending" and all(store.exists(k) for k in keys)
    with session_scope() as s:
        assert purge_due(s, store) == [], "not due yet"
        assert all(store.exists(k) for k in keys)
        (purged,) = purge_due(s, store, now=utcnow() + timedelta(hours=25))
        assert purged.id == result.receipt_id and purged.deletion_status == "done"
    assert not any(store.exists(k) for k in keys)


def test_nothing_quarantined_means_nothing_to_delete(org, chain):
    with session_scope(write=True) as s:
        add_chunks(s, get_org(s, org), ["charlie"])
    with session_scope() as s:
        result = forget_document(s, org, "charlie.md", actor="alice")
        assert s.get(ForgetReceipt, result.receipt_id).deletion_status == "none"


def test_cli_forget_prints_the_receipt_and_lists_it(org, chain):
    runner = CliRunner()
    out = runner.invoke(app, ["forget", org, "bravo.md", "--reason", "request 9", "--actor", "dpo"])
    assert out.exit_code == 0, out.stderr
    assert "receipt fr_" in out.stdout and "deletion done" in out.stdout and "request 9" in out.stdout
    assert f"quarantined: {chain['c1']}" in out.stdout and "replay consolidation: jb_" in out.stdout
    listed = json.loads(runner.invoke(app, ["receipts", org, "--json"]).stdout)
    assert len(listed) == 1 and listed[0]["actor"] == "dpo" and listed[0]["replay_job"].startswith("jb_")
    table = runner.invoke(app, ["receipts", org]).stdout
    assert listed[0]["id"] in table and "bravo.md" in table and "done" in table
    shown = runner.invoke(app, ["receipts", "show", listed[0]["id"], "--json"])
    assert json.loads(shown.stdout) == listed[0]
    missing = runner.invoke(app, ["receipts", "show", "fr_nope"])
    assert missing.exit_code == 2 and "forget receipt 'fr_nope'" in missing.stderr


def test_the_nightly_worker_purges_what_is_due(org, chain, monkeypatch):
    from orgmem.ops.handlers import _purge_forgotten

    monkeypatch.setenv("ORGMEM_FORGET_GRACE_HOURS", "1")
    get_settings.cache_clear()
    with session_scope() as s:
        result = forget_document(s, org, "bravo.md", actor="alice")
    assert _purge_forgotten() == [] and all(open_store().exists(k) for k in _keys(chain["c1"]))
    with session_scope(write=True) as s:
        s.get(ForgetReceipt, result.receipt_id).purge_after = utcnow() - timedelta(minutes=1)
    assert _purge_forgotten() == [result.receipt_id]
    assert not any(open_store().exists(k) for k in _keys(chain["c1"]))


def test_forgetting_a_group_document_rolls_back_the_group_head(org, chain):
    """A group's memory has its own lineage and head: forgetting its document moves that head."""
    from orgmem.checkpoints import CheckpointDraft, commit_checkpoint
    from orgmem.db.models import Document
    from orgmem.lineage.audiences import head_holder

    store = open_store()
    with session_scope() as s:
        (secret,) = add_chunks(s, get_org(s, org), ["payroll"], source_name="hr")
        s.scalar(select(Document).where(Document.external_id == "payroll.md")).audience = "hr"
        s.commit()
        group_ck = commit_checkpoint(s, store, CheckpointDraft(
            org=org, parent_id=None, objects={MEMORY: b"hr memory"}, manifest={}, inputs=[secret.id],
            metrics={},
            status="promoted", created_by="test", base_model="tiny-random", base_fingerprint="f" * 64,
            memory_kind="cms", audience="hr")).checkpoint.id  # fmt: skip
    with session_scope() as s:
        result = forget_document(s, org, "payroll.md", actor="dpo")
    assert result.quarantined == [group_ck] and result.deletion_status == "done"
    with session_scope() as s:
        acme = get_org(s, org)
        assert head_holder(s, acme, "hr").head_checkpoint_id is None
        assert acme.head_checkpoint_id == chain["c1"], "the org memory never saw it"
