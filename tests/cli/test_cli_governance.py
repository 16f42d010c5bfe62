"""Governance in checkpoints: the record (scanner, rule set and its version, redactions per rule of
the input versions) and ``orgmem governance affected``, which lists checkpoints built under other
rules so they can be retrained after a rule change."""

from __future__ import annotations

import json

from sqlalchemy.orm import Session
from typer.testing import CliRunner

from orgmem.cli.main import app
from orgmem.db.models import Redaction
from orgmem.db.session import session_factory
from orgmem.governance import DETECT_SECRETS_VERSION, RULESET
from orgmem.governance.record import governance_record, rule_names, ruleset_version
from orgmem.lineage import create_org
from orgmem.store.base import ObjectStore
from tests.lineage_factories import add_chunks, record

runner = CliRunner()


def _redact(session: Session, version_id: int, *rules: str) -> None:
    for i, rule in enumerate(rules):
        session.add(Redaction(document_version_id=version_id, rule=rule, start=i, end=i + 1,
                              placeholder=f"[REDACTED:{rule}]"))  # fmt: skip
    session.commit()


def test_record_counts_redactions_per_rule(db_url: str) -> None:
    session = session_factory(db_url)()
    org = create_org(session, "acme", "Acme")
    a, b, c = add_chunks(session, org, ["alpha", "bravo", "charlie"])
    _redact(session, a.document_version_id, "aws-access-key", "aws-access-key", "pii:email")
    _redact(session, b.document_version_id, "jwt")
    _redact(session, c.document_version_id, "slack-token")
    block = governance_record(session, [a.document_version_id, b.document_version_id])
    assert block["scanner"] == "detect-secrets" and block["scanner_version"] == DETECT_SECRETS_VERSION
    assert block["ruleset"] == RULESET and block["ruleset_version"] == ruleset_version()
    assert block["redactions"] == {"aws-access-key": 2, "jwt": 1, "pii:email": 1}, "charlie is not an input"
    assert block["redactions_total"] == 4 and block["document_versions"] == 2
    assert len(ruleset_version()) == 16 and "orgmem:gcp-api-key" in rule_names()
    session.close()


def test_affected_lists_checkpoints_of_other_rule_sets(db_url: str, store: ObjectStore) -> None:
    session = session_factory(db_url)()
    org = create_org(session, "acme", "Acme")
    session.commit()
    a, b, c = add_chunks(session, org, ["alpha", "bravo", "charlie"])
    old = {"governance": {"ruleset_version": "0123456789abcdef", "redactions": {"jwt": 1}}}
    current = {"governance": {"ruleset_version": ruleset_version(), "redactions": {}}}
    legacy = record(session, store, org, None, [a], status="promoted", metrics={"recall": 0.5})
    stale = record(session, store, org, legacy.id, [b], status="promoted", metrics=old)
    fresh = record(session, store, org, stale.id, [c], status="promoted", metrics=current)
    session.close()

    out = runner.invoke(app, ["governance", "affected", "acme", "--json"])
    assert out.exit_code == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["current_ruleset_version"] == ruleset_version()
    rows = {r["id"]: r for r in data["checkpoints"]}
    assert set(rows) == {legacy.id, stale.id} and fresh.id not in rows
    assert rows[legacy.id]["ruleset_version"] is None and rows[stale.id]["redactions"] == {"jwt": 1}
    table = runner.invoke(app, ["governance", "affected", "acme"]).stdout
    assert "(none recorded)" in table and "0123456789abcdef" in table
    other = json.loads(runner.invoke(app, ["governance", "affected", "acme", "--ruleset-not",
                                           "0123456789abcdef", "--json"]).stdout)  # fmt: skip
    assert {r["id"] for r in other["checkpoints"]} == {legacy.id, fresh.id}
    rules = json.loads(runner.invoke(app, ["governance", "rules", "--json"]).stdout)
    assert rules["ruleset_version"] == ruleset_version() and rules["rules"] == rule_names()
    missing = runner.invoke(app, ["governance", "affected", "nope"])
    assert missing.exit_code == 2 and "org 'nope' not found" in missing.stderr
