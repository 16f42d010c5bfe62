"""Forgetting a document: roll back past every checkpoint that saw it, quarantine them and their
descendants, exclude its chunks for good; refuse clearly and change nothing on bad input."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from orgmem.db import session_scope
from orgmem.db.models import Checkpoint, Chunk, ServingEvent
from orgmem.errors import ConflictError, NotFoundError
from orgmem.jobs import claim_job, create_job
from orgmem.lineage import get_org, pin
from orgmem.pipeline.forget import forget_document
from orgmem.store import open_store
from tests.lineage_factories import add_chunks, record


@pytest.fixture
def tree(org):
    """root(a) ── c1(b, replays a) ── c2(c)   and   c1 ── side(d, rejected); head c2."""
    store = open_store()
    with session_scope() as s:
        acme = get_org(s, org)
        a, b, c, d = add_chunks(s, acme, ["alpha", "bravo", "charlie", "delta"])
        root = record(s, store, org, None, [a], status="promoted")
        c1 = record(s, store, org, root.id, [b], replay=[a], status="promoted")
        side = record(s, store, org, c1.id, [d], status="rejected")
        c2 = record(s, store, org, c1.id, [c], status="promoted")
        return {"root": root.id, "c1": c1.id, "c2": c2.id, "side": side.id,
                "chunks": {"a": a.id, "b": b.id, "c": c.id, "d": d.id}}


def _state(org):
    with session_scope() as s:
        acme = get_org(s, org)
        statuses = {ck.id: ck.status for ck in s.scalars(select(Checkpoint))}
        chunks = {c.id: c.status for c in s.scalars(select(Chunk))}
        return acme.head_checkpoint_id, acme.served_checkpoint_id, statuses, chunks


def test_forget_a_mid_lineage_document(org, tree):
    with session_scope() as s:
        result = forget_document(s, org, "bravo.md", actor="test", reason="GDPR request 17")
    assert result.saw == [tree["c1"]]
    assert sorted(result.quarantined) == sorted([tree["c1"], tree["c2"], tree["side"]])
    assert (result.head_before, result.head_after) == (tree["c2"], tree["root"])
    head, served, statuses, chunks = _state(org)
    assert head == served == tree["root"]
    assert statuses[tree["root"]] == "promoted"
    assert all(statuses[tree[k]] == "quarantined" for k in ("c1", "c2", "side"))
    ids = tree["chunks"]
    assert chunks[ids["b"]] == "excluded" and chunks[ids["a"]] == "consumed"
    assert chunks[ids["c"]] == "pending" and chunks[ids["d"]] == "pending", "the rest is replayed next"


def test_forget_what_the_first_checkpoint_saw_resets_the_head(org, tree):
    with session_scope() as s:
        pin(s, org, tree["c1"], actor="test")
        s.commit()
        result = forget_document(s, org, "file:///alpha.md", actor="test")
    assert sorted(result.saw) == sorted([tree["root"], tree["c1"]]), "c1 replayed alpha"
    head, served, statuses, chunks = _state(org)
    assert head is None and served is None, "the pin on a tainted checkpoint is removed too"
    assert set(statuses.values()) == {"quarantined"}
    assert chunks[tree["chunks"]["a"]] == "excluded"
    assert {chunks[tree["chunks"][k]] for k in "bcd"} == {"pending"}
    with session_scope() as s:
        events = [e.action for e in s.scalars(select(ServingEvent).order_by(ServingEvent.id))]
    assert "rollback" in events and events.count("quarantine") == 4


def test_forget_a_document_no_checkpoint_saw(org, tree):
    with session_scope(write=True) as s:
        (extra,) = add_chunks(s, get_org(s, org), ["echo"])
    with session_scope() as s:
        result = forget_document(s, org, "echo.md", actor="test")
    assert result.saw == [] and result.quarantined == [] and result.head_after == tree["c2"]
    assert _state(org)[3][extra.id] == "excluded"


def test_refusals_change_nothing(org, tree):
    before = _state(org)
    with session_scope() as s, pytest.raises(NotFoundError, match="no document 'nope.md'"):
        forget_document(s, org, "nope.md", actor="test")
    with session_scope(write=True) as s:
        job = create_job(s, get_org(s, org), "consolidate").id
    with session_scope(write=True) as s:
        claim_job(s, job, "w1", 60)
    with session_scope() as s, pytest.raises(ConflictError, match=f"being consolidated by job '{job}'"):
        forget_document(s, org, "bravo.md", actor="test")
    assert _state(org) == before


def test_forget_command_queues_the_replay(org, tree):
    import json

    from typer.testing import CliRunner

    from orgmem.cli.main import app

    result = CliRunner().invoke(app, ["forget", "acme", "charlie.md", "--reason", "request 9", "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["quarantined"] == [tree["c2"]] and data["head_after"] == tree["c1"]
    assert data["replay_job"].startswith("jb_")
    missing = CliRunner().invoke(app, ["forget", "acme", "zulu.md"])
    assert missing.exit_code == 2 and "no document 'zulu.md'" in missing.stderr
