"""The lineage scenario through the CLI with --json: org, checkpoint tree, pin, rollback, history."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from orgmem.cli.main import app
from orgmem.db.session import session_factory
from orgmem.lineage import get_org
from orgmem.store.base import ObjectStore
from tests.lineage_factories import add_chunks, record

runner = CliRunner()


def cli(*args: str, code: int = 0) -> Any:
    """Run ``orgmem ARGS``; check the exit code; return parsed JSON (for --json) or stdout."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    if code == 0 and "--json" in args:
        return json.loads(result.stdout)
    return result


def test_lineage_scenario(db_url: str, store: ObjectStore) -> None:
    created = cli("org", "create", "acme", "--name", "Acme Corp", "--json")
    assert created["slug"] == "acme" and created["served_checkpoint_id"] is None
    assert [o["slug"] for o in cli("org", "list", "--json")] == ["acme"]

    # a consolidation would record these; the tree: root ── c1 ── c2, and c1 ── side (rejected)
    session: Session = session_factory(db_url)()
    org = get_org(session, "acme")
    chunks = add_chunks(session, org, ["a", "b", "c", "d"])
    root = record(session, store, org, None, chunks[:1], status="promoted", metrics={"recall": 0.4})
    c1 = record(session, store, org, root.id, chunks[1:2], status="promoted", metrics={"recall": 0.6})
    side = record(session, store, org, c1.id, chunks[3:], status="rejected", metrics={"recall": 0.1})
    c2 = record(session, store, org, c1.id, chunks[2:3], status="promoted", metrics={"recall": 0.8})
    session.close()

    tree = cli("checkpoints", "acme", "--json")
    assert [(n["id"], n["parent_id"], n["depth"]) for n in tree["checkpoints"]] == [
        (root.id, None, 0),
        (c1.id, root.id, 1),
        (side.id, c1.id, 2),
        (c2.id, c1.id, 2),
    ]
    assert [n["status"] for n in tree["checkpoints"]] == ["promoted", "promoted", "rejected", "promoted"]
    assert [n["id"] for n in tree["checkpoints"] if n["served"]] == [c2.id]
    assert tree["checkpoints"][3]["metrics"] == {"recall": 0.8}
    text = cli("checkpoints", "acme").stdout
    assert f"└─ {c2.id}" in text and "recall=0.8" in text and "served,head" in text

    shown = cli("checkpoint", "show", c1.id, "--json")
    assert shown["org"] == "acme" and sorted(shown["children"]) == sorted([side.id, c2.id])
    assert shown["inputs"] == {"new": 1, "replay": 0} and len(shown["objects"]) == 3

    pinned = cli("pin", "acme", c1.id, "--reason", "freeze for audit", "--actor", "alice", "--json")
    assert pinned["served_checkpoint_id"] == c1.id and pinned["previous_checkpoint_id"] == c2.id
    rolled = cli("rollback", "acme", root.id, "--reason", "bad night", "--actor", "bob", "--json")
    assert rolled["abandoned"] == [c2.id, c1.id] and rolled["chunks_to_pending"] == 2
    assert rolled["head_checkpoint_id"] == root.id and rolled["served_checkpoint_id"] == c1.id  # pin holds
    assert cli("unpin", "acme", "--actor", "bob", "--json")["served_checkpoint_id"] == root.id

    history = cli("history", "acme", "--json")["events"]
    assert [(e["action"], e["served_checkpoint_id"], e["actor"]) for e in history][-3:] == [
        ("pin", c1.id, "alice"),
        ("rollback", c1.id, "bob"),
        ("unpin", root.id, "bob"),
    ]
    assert history[-2]["reason"] == "bad night"
    at_pin = cli("history", "acme", "--at", history[-3]["at"], "--json")
    assert at_pin["served_checkpoint_id"] == c1.id and at_pin["event"]["action"] == "pin"
    assert cli("history", "acme", "--at", "2000-01-01", "--json")["served_checkpoint_id"] is None
    assert "served" in cli("history", "acme", "--at", "now").stdout

    forced = cli("checkpoint", "promote", c1.id, "--json")  # c1's parent is the head again
    assert forced["action"] == "promote" and forced["head_checkpoint_id"] == c1.id


def _snapshot() -> tuple[Any, Any]:
    return cli("checkpoints", "acme", "--json"), cli("history", "acme", "--json")


@pytest.fixture
def small_tree(db_url: str, store: ObjectStore) -> dict[str, str]:
    cli("org", "create", "acme")
    cli("org", "create", "globex")
    session = session_factory(db_url)()
    acme, globex = get_org(session, "acme"), get_org(session, "globex")
    root = record(session, store, acme, None, add_chunks(session, acme, ["a"]), status="promoted")
    side = record(session, store, acme, root.id, add_chunks(session, acme, ["b"]), status="rejected")
    head = record(session, store, acme, root.id, add_chunks(session, acme, ["c"]), status="promoted")
    theirs = record(session, store, globex, None, add_chunks(session, globex, ["z"]))
    session.close()
    return {"root": root.id, "side": side.id, "head": head.id, "theirs": theirs.id}


ERROR_CASES = [
    (("pin", "nope", "{root}"), 2, "org 'nope' not found"),
    (("pin", "acme", "ck_000000000000"), 2, "checkpoint 'ck_000000000000' not found"),
    (("pin", "acme", "{theirs}"), 3, "belongs to org 'globex', not 'acme'"),
    (("rollback", "acme", "{side}"), 3, "not an ancestor of org 'acme' head"),
    (("rollback", "acme", "{head}"), 3, "already the head"),
    (("unpin", "acme"), 3, "no pinned checkpoint"),
    (("checkpoint", "promote", "{side}"), 3, "rejected; promote it with --force"),
    (("checkpoint", "show", "ck_000000000000"), 2, "not found"),
    (("checkpoints", "nope"), 2, "org 'nope' not found"),
    (("org", "create", "acme"), 3, "org 'acme' already exists"),
    (("org", "create", "Not_A_Slug"), 1, "invalid org slug 'Not_A_Slug'"),
    (("history", "acme", "--at", "yesterday-ish"), 2, "not an ISO 8601 time"),
]


def test_errors_are_clear_and_change_nothing(small_tree: dict[str, str]) -> None:
    """Each refused command: its message on stderr, its exit code, no traceback, no change at all."""
    before = _snapshot()
    for args, code, message in ERROR_CASES:
        result = cli(*(a.format(**small_tree) for a in args), code=code)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.output
        assert _snapshot() == before, args
