"""``orgmem audit``: every admin action of the issue is an audit event with actor, time and
details (source added/removed, pin, unpin, rollback, forget, forced promotion, key created/revoked),
filterable by time and action."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session
from typer.testing import CliRunner

from orgmem.cli.main import app
from orgmem.db.session import session_factory
from orgmem.lineage import get_org
from orgmem.store.base import ObjectStore
from tests.lineage_factories import add_chunks, record

runner = CliRunner()


def cli(*args: str, code: int = 0) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout) if code == 0 and "--json" in args else result


def test_every_admin_action_is_audited(db_url: str, store: ObjectStore, tmp_path) -> None:
    cli("org", "create", "acme", "--actor", "ops")
    (tmp_path / "handbook").mkdir()
    cli("source", "add", "acme", "docs", "--name", "handbook", "--path", str(tmp_path / "handbook"),
        "--actor", "ann")  # fmt: skip
    cli("source", "remove", "acme", "handbook", "--actor", "ann")
    session: Session = session_factory(db_url)()
    org = get_org(session, "acme")
    a, b, c = add_chunks(session, org, ["alpha", "bravo", "charlie"])
    root = record(session, store, org, None, [a], status="promoted")
    c1 = record(session, store, org, root.id, [b], status="promoted")
    side = record(session, store, org, c1.id, [c], status="rejected")
    session.close()
    cli("pin", "acme", root.id, "--actor", "bob", "--reason", "incident 7")
    cli("unpin", "acme", "--actor", "bob")
    cli("rollback", "acme", root.id, "--actor", "bob", "--reason", "bad night")
    cli("rollback", "acme", root.id, "--actor", "bob", code=3)  # refused: changes nothing, no event
    cli("checkpoint", "promote", c1.id, "--actor", "cara")
    cli("checkpoint", "promote", side.id, "--force", "--actor", "cara", "--reason", "gate too strict")
    key = cli("keys", "create", "acme", "--role", "admin", "--actor", "dave", "--json")
    cli("keys", "revoke", "acme", str(key["id"]), "--actor", "dave")
    cli("forget", "acme", "bravo.md", "--no-replay", "--actor", "erin", "--reason", "GDPR 3")

    events = cli("audit", "acme", "--json")
    by_action = {}
    for event in events:
        by_action.setdefault(event["action"], []).append(event)
    expected = {
        "source.add": "ann", "source.remove": "ann", "serving.pin": "bob", "serving.unpin": "bob",
        "serving.rollback": "bob", "serving.force_promote": "cara", "key.create": "dave",
        "key.revoke": "dave", "document.forget": "erin",
    }  # fmt: skip
    for action, actor in expected.items():
        assert action in by_action, f"{action} not audited: {sorted(by_action)}"
        assert by_action[action][0]["actor"] == actor and by_action[action][0]["at"]
    assert len(by_action["serving.rollback"]) == 2, "bob's rollback and the forget's own rollback"
    assert by_action["serving.pin"][0]["target"] == root.id
    forget = by_action["document.forget"][0]
    assert forget["target"] == "bravo.md" and forget["data"]["receipt"].startswith("fr_")
    assert [e["at"] for e in events] == sorted(e["at"] for e in events), "oldest first"

    serving = cli("audit", "acme", "--action", "serving", "--json")
    assert serving and all(e["action"].startswith("serving.") for e in serving)
    assert [e["action"] for e in cli("audit", "acme", "--action", "key.revoke", "--json")] == ["key.revoke"]
    assert len(cli("audit", "acme", "--since", "1h", "--json")) == len(events)
    assert cli("audit", "acme", "--since", "2999-01-01", "--json") == []
    assert len(cli("audit", "acme", "--limit", "2", "--json")) == 2
    text = cli("audit", "acme").stdout
    assert "document.forget" in text and "erin" in text and "serving.force_promote" in text
    bad = cli("audit", "acme", "--since", "yesterday-ish", code=2)
    assert "yesterday-ish" in bad.stderr
    assert "org 'nope' not found" in cli("audit", "nope", code=2).stderr
