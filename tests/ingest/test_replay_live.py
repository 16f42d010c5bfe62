"""Replay takes only live passages: a passage an edit replaced and a document the source deleted
are never replayed (replaying them would teach the old value again), an unchanged one is."""

from __future__ import annotations

from sqlalchemy import update

from orgmem.db import models as m
from orgmem.ingest import add_source, sync_source
from orgmem.pipeline.inputs import gather_inputs


def _consume_all(session):
    session.execute(update(m.Chunk).values(status="consumed"))
    session.commit()


def test_superseded_and_deleted_passages_are_not_replayed(session, org, tmp_path, count_tokens):
    docs = tmp_path / "handbook"
    docs.mkdir()
    (docs / "ports.md").write_text("# Ports\n\nThe Heron dispatch API listens on port 7415.\n")
    (docs / "office.md").write_text("# Office\n\nThe Tromso office opens at 07:45.\n")
    (docs / "old.md").write_text("# Retired\n\nThe Osprey batch job runs at 02:10.\n")
    source = add_source(session, org, "docs", "handbook", {"path": str(docs)})
    sync_source(session, source, progress=False, count_tokens=count_tokens)
    _consume_all(session)
    before = gather_inputs(session, org, replay_max=10, digest_extra={}, policy="full")
    replayed = " ".join(c.text for c in before.replay)
    assert all(value in replayed for value in ("7415", "07:45", "02:10"))

    (docs / "ports.md").write_text("# Ports\n\nThe Heron dispatch API listens on port 7720.\n")
    (docs / "old.md").unlink()
    sync_source(session, source, progress=False, count_tokens=count_tokens)
    after = gather_inputs(session, org, replay_max=10, digest_extra={}, policy="full")
    replayed = " ".join(c.text for c in after.replay)
    assert "07:45" in replayed, "an unchanged document is still replayed"
    assert "7415" not in replayed, "the replaced value is never replayed"
    assert "02:10" not in replayed, "a deleted document is never replayed"
    assert any("7720" in c.text for c in after.new), "the new value is tonight's material"
    for policy in ("sample", "budget"):
        chosen = gather_inputs(session, org, replay_max=10, digest_extra={}, policy=policy).replay
        assert [c.text for c in chosen] == [c.text for c in after.replay]
