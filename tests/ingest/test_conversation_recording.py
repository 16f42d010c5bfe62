"""Recorded conversations at the ingest layer (issue 17): the opt-in policy, a turn as a governed
document of the built-in source with the key's audience, the bounds, and reading turns back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from connectors.base import SourceConfigError
from orgmem.db import models as m
from orgmem.db.types import utcnow
from orgmem.errors import NotFoundError, OrgmemError
from orgmem.ingest import add_source, sync_source
from orgmem.ingest.conversations import (
    ConversationSettings,
    TurnInput,
    conversations_source,
    disable,
    enable,
    find_turn,
    get_policy,
    list_turns,
    policy_dict,
    record_turn,
)
from orgmem.ingest.conversations.record import bound_turn

AWS_ID = "AKIAQ3EGRTYU7XNPLM2Z"
AWS_SECRET = "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"


def _turn(org, key_id=1, groups=(), question="Which port does Heron listen on?",
          answer="Heron listens on port 7415.") -> TurnInput:
    return TurnInput(org_id=org.id, key_id=key_id, groups=tuple(groups), question=question, answer=answer,
                     response_id="chatcmpl-test", checkpoint="base")


def _keys(session, org, *groups_per_key):
    from orgmem.keys import create_key

    ids = [create_key(session, org, "employee", groups=list(g), actor="test").row.id for g in groups_per_key]
    session.commit()
    return ids


def _document_of(session, turn_id):
    turn = session.get(m.ConversationTurn, turn_id)
    return turn, session.get(m.Document, turn.document_id)


def _chunks_of(session, document_id):
    versions = select(m.DocumentVersion.id).where(m.DocumentVersion.document_id == document_id)
    return list(session.scalars(select(m.Chunk).where(m.Chunk.document_version_id.in_(versions))))


def test_recording_is_off_until_enabled_and_nothing_is_stored_while_off(session, org, count_tokens):
    (key,) = _keys(session, org, ())
    assert policy_dict(org, get_policy(session, org))["enabled"] is False
    assert record_turn(session, _turn(org, key), count_tokens=count_tokens).skipped == "disabled"
    assert session.scalar(select(m.ConversationTurn.id)) is None
    assert session.scalar(select(m.Document.id)) is None

    enable(session, org, retention_days=7, actor="admin@test")
    disable(session, org, actor="admin@test")
    session.commit()
    assert record_turn(session, _turn(org, key), count_tokens=count_tokens).skipped == "disabled"
    actions = list(session.scalars(select(m.AuditEvent.action).where(m.AuditEvent.org_id == org.id)
                                   .where(m.AuditEvent.action.like("conversations.%"))))
    assert actions == ["conversations.enable", "conversations.disable"]


def test_an_org_keys_turn_is_an_org_document_of_the_builtin_source(session, org, count_tokens):
    (key,) = _keys(session, org, ())
    enable(session, org, retention_days=7, actor="admin@test")
    done = record_turn(session, _turn(org, key), count_tokens=count_tokens)
    session.commit()
    assert done.turn_id and done.audience == "org"
    turn, doc = _document_of(session, done.turn_id)
    source = session.get(m.Source, doc.source_id)
    assert (source.name, source.kind, doc.audience, doc.external_id) == (
        "conversations", "conversations", "org", f"turn/{done.turn_id}")
    chunks = _chunks_of(session, doc.id)
    assert chunks and {c.status for c in chunks} == {"pending"}
    assert "User: Which port does Heron listen on?" in chunks[0].text and "port 7415" in chunks[0].text
    assert turn.key_id == key and turn.text.startswith("User: Which port")


def test_a_group_keys_turn_trains_its_group_never_org_and_several_groups_take_the_first(
        session, org, count_tokens):
    eng, multi = _keys(session, org, ("eng",), ("ops", "legal"))
    enable(session, org, actor="admin@test")
    one = record_turn(session, _turn(org, eng, ("eng",)), count_tokens=count_tokens)
    two = record_turn(session, _turn(org, multi, ("ops", "legal")), count_tokens=count_tokens)
    session.commit()
    assert _document_of(session, one.turn_id)[1].audience == "eng"
    assert _document_of(session, two.turn_id)[1].audience == "legal", "the first group in name order"


def test_a_secret_in_a_turn_is_redacted_like_any_source_and_a_turn_of_only_secrets_is_not_stored(
        session, org, count_tokens):
    (key,) = _keys(session, org, ())
    enable(session, org, actor="admin@test")
    question = f"Our deploy uses {AWS_ID} / {AWS_SECRET}; mail ops@acme.example if it fails. Is that fine?"
    done = record_turn(session, _turn(org, key, question=question), count_tokens=count_tokens)
    session.commit()
    turn, doc = _document_of(session, done.turn_id)
    stored = " ".join(c.text for c in _chunks_of(session, doc.id))
    for value in (AWS_ID, AWS_SECRET, "ops@acme.example"):
        assert value not in stored and value not in turn.text
    assert "[REDACTED:" in stored and "Is that fine?" in stored and turn.redactions >= 3
    rules = set(session.scalars(select(m.Redaction.rule)))
    assert "email" in rules and any("aws" in r.lower() for r in rules), rules

    only = record_turn(session, _turn(org, key, question=AWS_ID, answer=AWS_ID), count_tokens=count_tokens)
    assert only.turn_id is None and only.skipped == "governance: only secrets"
    assert session.scalar(select(func.count()).select_from(m.ConversationTurn)) == 1, "nothing of it stored"
    assert session.scalar(select(func.count()).select_from(m.Document)) == 1


def test_turn_size_is_capped_and_turns_per_key_per_day_are_bounded(session, org, count_tokens):
    (key,) = _keys(session, org, ())
    enable(session, org, actor="admin@test")
    q, a, cut = bound_turn("q" * 900, "a" * 900, 1000)
    assert cut and len(q) <= 505 and len(q) + len(a) <= 1010 and q.endswith("[…]")
    settings = ConversationSettings(max_turn_chars=400, turns_per_key_per_day=2)
    long = _turn(org, key, question="Why? " * 200, answer="Because. " * 200)
    first = record_turn(session, long, count_tokens=count_tokens, settings=settings)
    assert session.get(m.ConversationTurn, first.turn_id).truncated
    assert len(session.get(m.ConversationTurn, first.turn_id).text) < 450
    record_turn(session, _turn(org, key), count_tokens=count_tokens, settings=settings)
    assert record_turn(session, _turn(org, key), count_tokens=count_tokens,
                       settings=settings).skipped == "daily limit"
    tomorrow = utcnow() + timedelta(days=1, minutes=1)
    assert record_turn(session, _turn(org, key), count_tokens=count_tokens, settings=settings,
                       now=tomorrow).turn_id, "a rolling 24 hours"


def test_source_add_refuses_the_builtin_kind_and_its_sync_has_nothing_to_do(session, org, count_tokens):
    with pytest.raises(SourceConfigError, match="built-in source of recorded chat turns.*enable ORG"):
        add_source(session, org, "conversations", "talk", {})
    enable(session, org, actor="admin@test")
    source = conversations_source(session, org)
    report = sync_source(session, source, progress=False, count_tokens=count_tokens)
    assert report.ok and report.seen == 0


def test_enable_refuses_a_foreign_source_of_that_name_and_bad_values(session, org, tmp_path):
    with pytest.raises(OrgmemError, match="retention of 0 days"):
        enable(session, org, retention_days=0, actor="a")
    with pytest.raises(OrgmemError, match="unknown PII kind"):
        enable(session, org, redact_pii=["ssn"], actor="a")
    session.add(m.Source(org_id=org.id, name="conversations", kind="docs", config={"path": str(tmp_path)}))
    session.flush()
    with pytest.raises(OrgmemError, match="has a docs source named 'conversations'"):
        enable(session, org, actor="a")


def test_listing_shows_a_keys_own_turns_paged_and_another_keys_turn_is_not_found(session, org, count_tokens):
    mine, theirs = _keys(session, org, (), ())
    enable(session, org, actor="admin@test")
    now = utcnow()
    own = [record_turn(session, _turn(org, mine, question=f"Question {i}?"), count_tokens=count_tokens,
                       now=now + timedelta(seconds=i)).turn_id for i in range(3)]
    other = record_turn(session, _turn(org, theirs), count_tokens=count_tokens).turn_id
    session.commit()
    first = list_turns(session, org, key_id=mine, limit=2)
    assert [t.id for t in first.turns] == [own[2], own[1]] and first.has_more
    rest = list_turns(session, org, key_id=mine, limit=2, after=first.turns[-1].id)
    assert [t.id for t in rest.turns] == [own[0]] and not rest.has_more
    assert {t.id for t in list_turns(session, org).turns} == {*own, other}, "an admin sees every turn"
    with pytest.raises(NotFoundError, match=f"conversation turn '{other}' not found"):
        find_turn(session, org, other, key_id=mine)
    with pytest.raises(NotFoundError, match="conversation turn 'turn_nope' not found"):
        find_turn(session, org, "turn_nope", key_id=mine)


def test_the_bounds_are_read_from_orgmem_conversation_variables(monkeypatch):
    from orgmem.ingest.conversations import get_conversation_settings

    monkeypatch.setenv("ORGMEM_CONVERSATION_MAX_TURN_CHARS", "1200")
    monkeypatch.setenv("ORGMEM_CONVERSATION_TURNS_PER_KEY_PER_DAY", "5")
    get_conversation_settings.cache_clear()
    try:
        cfg = get_conversation_settings()
        assert (cfg.max_turn_chars, cfg.turns_per_key_per_day) == (1200, 5)
    finally:
        get_conversation_settings.cache_clear()
