"""``orgmem keys create|list|revoke`` and ``orgmem serve --openapi`` on the embedded defaults."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from orgmem.cli.main import app
from orgmem.config import get_settings
from orgmem.db.session import session_scope
from orgmem.keys import AuthenticationError, authenticate

runner = CliRunner()


def cli(*args: str, code: int = 0):
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout) if code == 0 and "--json" in args else result


def test_keys_lifecycle_through_the_cli():
    cli("init")
    cli("org", "create", "acme")
    shown = cli("keys", "create", "acme", "--role", "admin", "--name", "ops")
    key = next(line.strip() for line in shown.stdout.splitlines() if line.strip().startswith("omk_"))
    assert "shown only now" in shown.stdout
    employee = cli("keys", "create", "acme", "--json")
    assert employee["role"] == "employee" and employee["key"].startswith("omk_")
    listed = cli("keys", "list", "acme", "--json")
    assert [(k["name"], k["role"], k["active"]) for k in listed] == [("ops", "admin", True),
                                                                      ("employee-2", "employee", True)]
    assert key not in cli("keys", "list", "acme").stdout
    url = get_settings().database_url
    with session_scope(url) as s:
        assert authenticate(s, key).role == "admin"
    revoked = cli("keys", "revoke", "acme", employee["prefix"], "--json")
    assert revoked["active"] is False
    with session_scope(url) as s, pytest.raises(AuthenticationError, match="revoked"):
        authenticate(s, employee["key"])
    assert "already revoked" in cli("keys", "revoke", "acme", employee["prefix"], code=3).stderr
    assert "invalid key role" in cli("keys", "create", "acme", "--role", "owner", code=1).stderr
    assert "not found" in cli("keys", "list", "nope", code=2).stderr


def test_serve_prints_the_openapi_spec():
    spec = json.loads(cli("serve", "--openapi").stdout)
    assert "/v1/chat/completions" in spec["paths"] and "/api/orgs/{org}/rollback" in spec["paths"]
