"""``orgmem conversations``: enable/disable/status (audited), list the org's turns, delete one with a
receipt, prune past the retention as of a given time; ``source add conversations`` is refused."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from typer.testing import CliRunner

from orgmem.chunking import token_counter
from orgmem.db.session import session_scope
from orgmem.db.types import utcnow
from orgmem.ingest.conversations import TurnInput, record_turn
from orgmem.keys import create_key
from orgmem.lineage import get_org
from orgmem.models.tiny import build_tiny_tokenizer

runner = CliRunner()


def cli(*args: str, code: int = 0) -> Any:
    result = runner.invoke(app_(), list(args))
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout) if code == 0 and "--json" in args else result


def app_():
    from orgmem.cli.main import app

    return app


def _record(db_url: str, question: str, days_ago: float) -> str:
    with session_scope(db_url, write=True) as s:
        org = get_org(s, "acme")
        key = create_key(s, org, "employee", actor="test").row
        s.flush()
        turn = TurnInput(org_id=org.id, key_id=key.id, groups=(), question=question, answer="An answer.",
                         response_id="chatcmpl-cli", checkpoint="base")
        done = record_turn(s, turn, count_tokens=token_counter(build_tiny_tokenizer()),
                           now=utcnow() - timedelta(days=days_ago))
    assert done.turn_id, done.skipped
    return done.turn_id


def test_enable_status_turns_delete_prune_disable(db_url: str, store, tmp_path) -> None:
    cli("org", "create", "acme", "--actor", "ops")
    assert cli("conversations", "status", "acme", "--json")["enabled"] is False
    refused = cli("source", "add", "acme", "conversations", "--name", "talk", code=6)
    assert "built-in source of recorded chat turns" in refused.stderr
    on = cli("conversations", "enable", "acme", "--retention-days", "10", "--redact-pii", "email",
             "--actor", "ann", "--json")
    assert on["enabled"] and on["retention_days"] == 10 and on["redact_pii"] == ["email"]
    assert "recording conversations on; turns kept 10 days" in cli("conversations", "status", "acme").stdout

    old, recent = _record(db_url, "An old question?", 12), _record(db_url, "A recent question?", 1)
    listed = cli("conversations", "turns", "acme", "--json")
    assert [t["id"] for t in listed] == [recent, old] and listed[0]["text"].startswith("User: A recent")
    deleted = cli("conversations", "delete", "acme", recent, "--no-replay", "--actor", "bob", "--json")
    assert deleted["receipt"]["document"] == f"turn/{recent}" and deleted["receipt"]["actor"] == "bob"
    assert [t["id"] for t in cli("conversations", "turns", "acme", "--json")] == [old]

    pruned = cli("conversations", "prune", "acme", "--no-replay", "--json")
    assert pruned["deleted"] == 1 and len(pruned["receipts"]) == 1
    assert cli("conversations", "turns", "acme", "--json") == []
    assert len(cli("conversations", "turns", "acme", "--all", "--json")) == 2
    future = (utcnow() + timedelta(days=30)).isoformat()
    assert cli("conversations", "prune", "acme", "--now", future, "--json")["deleted"] == 0
    gone = cli("conversations", "delete", "acme", recent, "--no-replay", code=2)
    assert f"conversation turn '{recent}' not found" in gone.stderr

    off = cli("conversations", "disable", "acme", "--actor", "ann", "--json")
    assert off["enabled"] is False
    actions = [e["action"] for e in cli("audit", "acme", "--json")]
    for action in ("conversations.enable", "conversations.disable", "conversations.turn.delete",
                   "document.forget"):
        assert action in actions, action
