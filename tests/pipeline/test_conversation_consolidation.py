"""Recorded conversations through real consolidations (issue 17): a group key's turn trains only its
own group's memory; deleting it forgets it with a receipt; retention deletes old turns, also in the
nightly sync. Turns are recorded by ``record_turn`` (the server's listener calls the same)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from orgmem.chunking import token_counter
from orgmem.db import session_scope
from orgmem.db.models import AudienceHead, Chunk, ConversationTurn, Document, DocumentVersion
from orgmem.db.types import utcnow
from orgmem.errors import ConflictError, NotFoundError
from orgmem.ingest.conversations import TurnInput, enable, record_turn
from orgmem.jobs.lease import claim_job
from orgmem.jobs.records import create_job
from orgmem.jobs.runner import run_job
from orgmem.keys import create_key
from orgmem.lineage import get_org
from orgmem.lineage.receipts import get_receipt
from orgmem.models.tiny import build_tiny_tokenizer
from orgmem.ops.conversations import delete_turn, prune
from orgmem.ops.handlers import run_sync
from orgmem.ops.jobs import create_sync
from orgmem.pipeline import consolidate_org
from tests.pipeline.conftest import FAST_PARAMS, NIGHT1
from tests.pipeline.test_audiences import _add, _inputs

QUESTION = "Where does the Kestrel deploy bot keep its staging token?"
ANSWER = "The Kestrel deploy bot keeps it in vault path secret/kestrel/staging, rotated every 9 days."


@pytest.fixture
def count_tokens():
    return token_counter(build_tiny_tokenizer())


def _enable(org: str, days: int = 30) -> None:
    with session_scope(write=True) as s:
        enable(s, get_org(s, org), retention_days=days, actor="admin@test")


def _key(org: str, groups: list[str]) -> tuple[int, tuple[str, ...]]:
    with session_scope(write=True) as s:
        row = create_key(s, org, "employee", groups=groups, actor="test").row
        s.flush()
        return row.id, tuple(row.groups)


def _record(org: str, key: tuple[int, tuple[str, ...]], count_tokens, *, question=QUESTION, answer=ANSWER,
            now=None) -> str:
    with session_scope(write=True) as s:
        turn = TurnInput(org_id=get_org(s, org).id, key_id=key[0], groups=key[1], question=question,
                         answer=answer, response_id="chatcmpl-x", checkpoint="base")
        done = record_turn(s, turn, count_tokens=count_tokens, now=now)
    assert done.turn_id, done.skipped
    return done.turn_id


def _turn_chunks(turn_id: str) -> list[int]:
    with session_scope() as s:
        doc = s.get(ConversationTurn, turn_id).document_id
        versions = select(DocumentVersion.id).where(DocumentVersion.document_id == doc)
        return list(s.scalars(select(Chunk.id).where(Chunk.document_version_id.in_(versions))))


def _chunk_rows(ids: list[int]) -> list[tuple[str, str]]:
    with session_scope() as s:
        return [(c.status, c.text) for c in s.scalars(select(Chunk).where(Chunk.id.in_(ids)))]


def test_a_group_keys_turn_trains_only_its_group_and_deleting_it_forgets_it(org, count_tokens):
    _enable(org)
    eng_key = _key(org, ["eng"])
    org_ids = _add(org, NIGHT1, "org")
    ops_ids = _add(org, ["The ops pager rotates at 08:00 and the escalation alias is ops-heron-2."], "ops")
    turn_id = _record(org, eng_key, count_tokens)
    turn_chunks = set(_turn_chunks(turn_id))
    assert turn_chunks

    night = consolidate_org(org, params=FAST_PARAMS)
    assert night.status == "promoted" and _inputs(night.checkpoint_id) == set(org_ids)
    ops = consolidate_org(org, params={**FAST_PARAMS, "audience": "ops"})
    assert ops.status == "promoted" and _inputs(ops.checkpoint_id) == set(ops_ids)
    assert not turn_chunks & (_inputs(night.checkpoint_id) | _inputs(ops.checkpoint_id)), (
        "a group key's turn never reaches the org memory or another group's")
    eng = consolidate_org(org, params={**FAST_PARAMS, "audience": "eng"})
    assert eng.status == "promoted" and _inputs(eng.checkpoint_id) == turn_chunks
    assert {status for status, _ in _chunk_rows(list(turn_chunks))} == {"consumed"}

    deleted = delete_turn(org, turn_id, actor="key:acme/alice", key_id=eng_key[0], replay=False)
    receipt = deleted.receipt
    assert receipt["document"] == f"turn/{turn_id}" and receipt["source"] == "conversations"
    assert receipt["saw"] == [eng.checkpoint_id] and eng.checkpoint_id in receipt["quarantined"]
    assert _chunk_rows(list(turn_chunks)) == [("excluded", "")] * len(turn_chunks), (
        "never trainable again, and its text is gone")
    with session_scope() as s:
        turn = s.get(ConversationTurn, turn_id)
        assert turn.text is None and turn.receipt_id == receipt["id"] and turn.forgotten_at is not None
        assert get_receipt(s, receipt["id"]).document_id == turn.document_id
        assert s.get(AudienceHead, (get_org(s, org).id, "eng")).head_checkpoint_id is None, "rolled back"
        assert get_org(s, org).head_checkpoint_id == night.checkpoint_id, "the org memory never saw it"
        assert s.get(Document, turn.document_id).audience == "eng"
    with pytest.raises(NotFoundError, match="not found"):
        delete_turn(org, turn_id, actor="key:acme/alice", key_id=eng_key[0], replay=False)


def test_another_keys_turn_cannot_be_deleted_and_nothing_changes(org, count_tokens):
    _enable(org)
    owner, other = _key(org, []), _key(org, [])
    turn_id = _record(org, owner, count_tokens)
    with pytest.raises(NotFoundError, match=f"conversation turn '{turn_id}' not found"):
        delete_turn(org, turn_id, actor="key:other", key_id=other[0], replay=False)
    assert {status for status, _ in _chunk_rows(_turn_chunks(turn_id))} == {"pending"}


def test_retention_forgets_old_turns_with_receipts_and_keeps_recent_ones(org, count_tokens):
    _enable(org, days=30)
    key = _key(org, [])
    now = utcnow()
    old = _record(org, key, count_tokens, now=now - timedelta(days=31))
    recent = _record(org, key, count_tokens, question="What is the Heron port?", now=now - timedelta(days=29))
    night = consolidate_org(org, params=FAST_PARAMS)
    assert set(_turn_chunks(old)) <= _inputs(night.checkpoint_id)

    pruned = prune(org, now=now, replay=False)
    assert len(pruned.receipts) == 1 and not pruned.refused and pruned.rolled_back
    with session_scope() as s:
        assert s.get(ConversationTurn, old).receipt_id == pruned.receipts[0]
        assert get_receipt(s, pruned.receipts[0]).reason == "retention: older than 30 days"
        assert s.get(ConversationTurn, recent).forgotten_at is None
    assert {status for status, _ in _chunk_rows(_turn_chunks(old))} == {"excluded"}
    assert prune(org, now=now, replay=False).receipts == [], "nothing left past retention"
    later = prune(org, now=now + timedelta(days=2), replay=False)
    assert len(later.receipts) == 1, "the recent turn passes its retention two days later"


def test_the_nightly_sync_prunes_before_the_consolidation(org, count_tokens):
    _enable(org, days=1)
    key = _key(org, [])
    old = _record(org, key, count_tokens, now=utcnow() - timedelta(days=2))
    job = create_sync(org, actor="scheduler", then_consolidate=True)
    outcome = run_job(job, run_sync)
    assert outcome.status == "succeeded", outcome.error
    pruned = outcome.result["conversations_pruned"]
    assert pruned["deleted"] == 1
    with session_scope() as s:
        assert s.get(ConversationTurn, old).receipt_id == pruned["receipts"][0]
    assert {status for status, _ in _chunk_rows(_turn_chunks(old))} == {"excluded"}, (
        "the night's consolidation, which follows the sync, cannot train on it")


def test_a_consolidation_holding_the_org_defers_deletion_and_retention_and_changes_nothing(org, count_tokens):
    _enable(org, days=1)
    key = _key(org, [])
    old = _record(org, key, count_tokens, now=utcnow() - timedelta(days=2))
    with session_scope(write=True) as s:
        job = create_job(s, get_org(s, org), "consolidate").id
    with session_scope(write=True) as s:
        claim_job(s, job, "w1", 60)
    with pytest.raises(ConflictError, match=f"being consolidated by job '{job}'"):
        delete_turn(org, old, actor="key:acme/x", key_id=key[0], replay=False)
    pruned = prune(org, replay=False)
    assert pruned.receipts == [] and pruned.refused == [old] and "being consolidated" in pruned.error
    with session_scope() as s:
        turn = s.get(ConversationTurn, old)
        assert turn.forgotten_at is None and turn.text and turn.receipt_id is None
    assert {status for status, _ in _chunk_rows(_turn_chunks(old))} == {"pending"}
