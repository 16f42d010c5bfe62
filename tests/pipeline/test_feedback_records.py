"""Corrections at the records layer: what training may read, and which audience a reply belongs to."""

from __future__ import annotations

from orgmem.api.feedback_routes import reply_of
from orgmem.api.turns import CompletedTurn
from orgmem.checkpoints import MEMORY, CheckpointDraft, commit_checkpoint
from orgmem.db import session_scope
from orgmem.feedback import corrections as records
from orgmem.keys import create_key
from orgmem.keys.api_keys import ApiKeyIdentity
from orgmem.lineage import get_org
from orgmem.serving.resolve import MemoryLayer, ResolvedModel
from orgmem.store import open_store


def _propose(s, org, audience: str = "org", text: str = "The port is 9182."):
    return records.add_correction(s, org, audience=audience, question="What is the port?",
                                  model_answer="The port is 7415.", proposed=text, proposer="key:test",
                                  proposer_key_id=None, extra={})


def test_only_approved_corrections_not_yet_in_the_head_lineage_are_material(org):
    with session_scope(write=True) as s:
        o = get_org(s, org)
        pending, rejected, approved, group = (_propose(s, o), _propose(s, o), _propose(s, o),
                                              _propose(s, o, "eng"))
        records.review(s, o, rejected, approve=False, actor="admin")
        records.review(s, o, approved, approve=True, actor="admin")
        records.review(s, o, group, approve=True, actor="admin")
        assert [t.id for t in records.waiting(s, o)] == [approved.id]
        assert [t.answer for t in records.waiting(s, o, "eng")] == ["The port is 9182."]
        assert records.waiting_groups(s, o) == ["eng"]
        # consumed by a checkpoint that is not (or no longer) on the head lineage: waiting again
        records.mark_consumed(s, [approved.id], "ck_abandoned")
        assert [t.id for t in records.waiting(s, o)] == [approved.id] and records.consumed(s, o) == []
        assert pending.status == "pending"
        counts = records.counts(s, o)
    assert counts["corrections"] == {"pending": 1, "approved": 1, "rejected": 1, "consumed": 1}

    with session_scope() as s:  # a head checkpoint that lists it in its feedback section learned it
        ck = commit_checkpoint(s, open_store(), CheckpointDraft(
            org=org, parent_id=None, objects={MEMORY: b"memory"}, manifest={}, inputs=[],
            metrics={"feedback": {"ids": [approved.id], "corrections": 1}}, status="promoted",
            created_by="test", base_model="tiny-random", base_fingerprint="f" * 64, memory_kind="cms"))
    with session_scope() as s:
        o = get_org(s, org)
        assert o.head_checkpoint_id == ck.checkpoint.id
        assert records.waiting(s, o) == [] and [t.id for t in records.consumed(s, o)] == [approved.id]


def test_a_group_models_reply_belongs_to_the_group(org):
    with session_scope(write=True) as s:
        key = create_key(s, org, "employee", actor="test", groups=["eng"]).row
        identity = ApiKeyIdentity(key.id, key.name, key.role, key.key_prefix, key.org_id, org,
                                  groups=("eng",))
    layer = MemoryLayer("eng", "ck_grp", "f" * 64, "k")
    turn = CompletedTurn("chatcmpl-1", identity, ResolvedModel("acme#eng", org, "ck_org", "e" * 64, "k",
                                                                (layer,)),
                         "an answer", "stop", 2, messages=({"role": "user", "content": "q?"},))
    reply = reply_of(turn)
    assert (reply.audience, reply.checkpoint_id, reply.checkpoint_label) == (
        "eng", "ck_grp", "ck_org+eng:ck_grp")
    stacked = ResolvedModel("acme", org, "ck_org", "e" * 64, "k", (layer,))
    org_turn = CompletedTurn("chatcmpl-2", identity, stacked, "an answer", "stop", 2, prompt="q?")
    assert (reply_of(org_turn).audience, reply_of(org_turn).question) == ("org", "q?")
