"""A source with ``forget_on_delete``: a file removed at the source is forgotten by the next sync
(checkpoints that saw it quarantined, their objects deleted, a receipt by ``sync:<source>``);
without the option a deletion only withdraws pending chunks, as before."""

from __future__ import annotations

from sqlalchemy import select

from orgmem.db import models as m
from orgmem.ingest import add_source, sync_source
from orgmem.lineage.receipts import list_receipts
from tests.lineage_factories import record


def _sync(session, source, count_tokens):
    return sync_source(session, source, progress=False, count_tokens=count_tokens)


def _folder(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "keep.md").write_text("# Keep\n\nThe Heron gateway listens on port 7415.\n")
    (docs / "secret-plan.md").write_text("# Plan\n\nProject Osprey ships on the 3rd of March.\n")
    return docs


def _consolidate_everything(session, store, org):
    """One promoted checkpoint trained on every chunk synced so far (what a night would make)."""
    chunks = list(session.scalars(select(m.Chunk).where(m.Chunk.org_id == org.id)))
    return record(session, store, org.slug, None, chunks, status="promoted")


def test_deleted_file_is_forgotten_after_sync(session, org, store, tmp_path, count_tokens):
    docs = _folder(tmp_path)
    config = {"path": str(docs), "forget_on_delete": True}
    source = add_source(session, org, "docs", "handbook", config)
    session.commit()
    assert _sync(session, source, count_tokens).new_versions == 2
    ck = _consolidate_everything(session, store, org)
    keys = [obj.key for obj in ck.objects]
    assert all(store.exists(k) for k in keys)

    (docs / "secret-plan.md").unlink()
    report = _sync(session, source, count_tokens)
    assert report.tombstones == 1 and len(report.forgotten) == 1, report.to_dict()

    session.expire_all()
    assert session.get(m.Checkpoint, ck.id).status == "quarantined"
    assert session.get(m.Org, org.id).head_checkpoint_id is None
    (receipt,) = list_receipts(session, org)
    assert receipt.id == report.forgotten[0]
    assert receipt.actor == "sync:handbook" and receipt.source == "handbook"
    assert receipt.document == "secret-plan.md" and receipt.quarantined == [ck.id]
    assert receipt.deletion_status == "done" and not any(store.exists(k) for k in keys)
    plan_chunks = session.scalars(
        select(m.Chunk.status).join(m.DocumentVersion).join(m.Document)
        .where(m.Document.external_id == "secret-plan.md")
    ).all()  # fmt: skip
    assert plan_chunks and set(plan_chunks) == {"excluded"}
    keep_chunks = session.scalars(
        select(m.Chunk.status).join(m.DocumentVersion).join(m.Document)
        .where(m.Document.external_id == "keep.md")
    ).all()  # fmt: skip
    assert set(keep_chunks) == {"pending"}, "the rest goes back to training"
    assert _sync(session, source, count_tokens).forgotten == [], "a tombstone is forgotten once"


def test_without_the_option_a_deletion_forgets_nothing(session, org, store, tmp_path, count_tokens):
    docs = _folder(tmp_path)
    source = add_source(session, org, "docs", "handbook", {"path": str(docs)})
    session.commit()
    _sync(session, source, count_tokens)
    ck = _consolidate_everything(session, store, org)
    (docs / "secret-plan.md").unlink()
    report = _sync(session, source, count_tokens)
    assert report.tombstones == 1 and report.forgotten == []
    session.expire_all()
    assert session.get(m.Checkpoint, ck.id).status == "promoted"
    assert list_receipts(session, org) == []


def test_source_add_flag_sets_the_option(session, org, tmp_path):
    from typer.testing import CliRunner

    from orgmem.cli.main import app

    docs = _folder(tmp_path)
    result = CliRunner().invoke(
        app, ["source", "add", "acme", "docs", "--path", str(docs), "--forget-on-delete", "--json"]
    )
    assert result.exit_code == 0, result.stderr
    session.expire_all()
    source = session.scalar(select(m.Source).where(m.Source.name == "docs"))
    assert source.config["forget_on_delete"] is True
