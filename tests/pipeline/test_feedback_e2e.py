"""Learning from use, end to end on the tiny base: replies through the official ``openai`` client,
corrections through ``POST /v1/feedback``, review through ``/api`` and the CLI, then consolidation.

What must hold: pending and rejected corrections never reach training (a night with only those
makes no checkpoint, and the served answers stay exactly the previous checkpoint's); an approved
one becomes material of the next night even with no new chunk, is marked consumed by the promoted
checkpoint, and moves the question's answer from the documents' old value to the corrected one.

Why NLL margins and not strings: the tiny random base learns a chat answer only partly in a few
seconds, so its greedy text is fragile across CPU kernels. The value's NLL after the answer's stem
("...listens on port ") is not: measured on this recipe, the corrected value drops by about 1.1
nats/token and ends about 0.8 below the old value; unapproved proposals move by a third of that
(the memory learns the org's phrasing, which lowers any answer in that frame a little).
"""

from __future__ import annotations

import httpx
import openai
import pytest
import torch
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from orgmem.app import create_app
from orgmem.checkpoints import MEMORY, load_checkpoint_objects
from orgmem.cli.main import app as cli
from orgmem.config import get_settings
from orgmem.db import session_scope
from orgmem.db.models import Checkpoint, Correction
from orgmem.eval.scoring import score_targets
from orgmem.keys import create_key
from orgmem.lineage import get_org
from orgmem.lineage.audit import list_audit
from orgmem.models import load_base
from orgmem.models.tokens import encode_chat, pad_token_id
from orgmem.pipeline import consolidate_org
from orgmem.pipeline.evaluation import memory_on
from orgmem.serving.config import ServeSettings
from orgmem.store import open_store
from tests.pipeline.conftest import FAST_PIPELINE, add_chunks
from tests.pipeline.feedback_support import FACTS, NO_GATE

ENGINE = {"epochs": 60.0, "lr_scale": 3.0, "tokens_per_step": 512, "max_seq_len": 256, "num_threads": 1,
          "kl_weight": 0.0, "seed": 0}
PARAMS = {"engine": ENGINE, "pipeline": {**FAST_PIPELINE, "new_probes": 2, "old_probes": 2}}
APPROVED, REJECTED, PENDING = 0, 1, 2


@pytest.fixture(scope="module")
def base():
    torch.set_num_threads(1)
    return load_base("tiny-random", device="cpu")


def _memory(checkpoint_id: str) -> bytes:
    with session_scope() as s:
        return load_checkpoint_objects(s, open_store(), checkpoint_id, [MEMORY])[MEMORY]


def value_nll(base, memory: bytes, question: str, stem: str, value: str) -> float:
    """NLL (nats/token) of ``value`` right after the answer's ``stem``, asked as chat."""
    tok = base.tokenizer
    prompt = encode_chat(tok, question) + tok(stem, add_special_tokens=False)["input_ids"]
    target = tok(value, add_special_tokens=False)["input_ids"]
    with memory_on(base, memory) as model:
        return score_targets(model, [(prompt, target)], pad_id=pad_token_id(tok))[0].mean_nll


def _ask(client: openai.OpenAI, question: str):
    return client.chat.completions.create(model="acme", messages=[{"role": "user", "content": question}],
                                          temperature=0, max_tokens=24)


def _feedback(client: openai.OpenAI, **body) -> httpx.Response:
    return client.post("/feedback", cast_to=httpx.Response, body=body)


def _served(org: str) -> str | None:
    with session_scope() as s:
        return get_org(s, org).served_checkpoint_id


def test_approved_corrections_are_learned_unapproved_never_reach_training(org, base):
    with session_scope(write=True) as s:
        get_org(s, org).gate_config = NO_GATE  # this test measures what is learned, not the gate
        employee = create_key(s, org, "employee", "asker", actor="test").key
        admin = create_key(s, org, "admin", "reviewer", actor="test").key
    add_chunks(org, [f"{stem}{old}. Remember: {stem.lower()}{old}." for _, stem, old, _ in FACTS])
    night1 = consolidate_org(org, params=PARAMS)
    assert night1.status == "promoted"

    app = create_app(get_settings(), ServeSettings(rate_limit_per_minute=0, default_max_tokens=24), base=base)
    with TestClient(app) as http:
        client = openai.OpenAI(base_url="http://testserver/v1", api_key=employee, http_client=http,
                               max_retries=0)
        replies = [_ask(client, q) for q, *_ in FACTS]
        assert {r.system_fingerprint for r in replies} == {night1.checkpoint_id}
        ids = []
        for reply, (_, stem, _, new) in zip(replies, FACTS, strict=True):
            resp = _feedback(client, response_id=reply.id, rating="down", correction=f"{stem}{new}.")
            assert resp.status_code == 200, resp.text
            out = resp.json()["correction"]
            assert out["status"] == "pending" and out["model_answer"] == reply.choices[0].message.content
            assert out["answered_by"] == night1.checkpoint_id and out["audience"] == "org"
            assert out["conflicting_documents"], "the document with the old value is flagged"
            ids.append(out["id"])

        # nothing approved: pending corrections make no night and change no answer
        assert consolidate_org(org, params=PARAMS).status == "nothing_to_do"
        runner = CliRunner()
        result = runner.invoke(cli, ["corrections", "reject", org, ids[REJECTED], "--reason", "not true"])
        assert result.exit_code == 0, result.output
        assert consolidate_org(org, params=PARAMS).status == "nothing_to_do"
        assert _served(org) == night1.checkpoint_id
        assert [_ask(client, q).choices[0].message.content for q, *_ in FACTS] == \
            [r.choices[0].message.content for r in replies]

        approve = http.post(f"/api/orgs/{org}/corrections/{ids[APPROVED]}/approve",
                            headers={"Authorization": f"Bearer {admin}"}, json={"reason": "moved last week"})
        assert approve.status_code == 200 and approve.json()["status"] == "approved", approve.text
        night2 = consolidate_org(org, params=PARAMS)  # no new chunk: the approved correction alone
        assert night2.status == "promoted" and night2.n_new == 0 and night2.parent_id == night1.checkpoint_id
        after = _ask(client, FACTS[APPROVED][0])
        assert after.system_fingerprint == night2.checkpoint_id

    with session_scope() as s:
        ck = s.get(Checkpoint, night2.checkpoint_id)
        rows = {c.id: c for c in s.query(Correction).all()}
        audit = [e.action for e in list_audit(s, get_org(s, org).id, action="correction")]
    assert ck.metrics["feedback"]["corrections"] == 1
    assert ck.metrics["feedback"]["details"][0]["correction"] == ids[APPROVED]
    assert rows[ids[APPROVED]].status == "consumed" and rows[ids[APPROVED]].consumed_checkpoint_id == ck.id
    assert rows[ids[REJECTED]].status == "rejected" and rows[ids[PENDING]].status == "pending"
    assert audit == ["correction.reject", "correction.approve"]
    tree = CliRunner().invoke(cli, ["checkpoints", org])  # the gate report where metrics are shown
    assert tree.exit_code == 0 and "corrections=1 changed=" in tree.output, tree.output
    shown = CliRunner().invoke(cli, ["checkpoint", "show", night2.checkpoint_id])
    assert "user material" in shown.output and "1 user correction(s)" in shown.output, shown.output

    before_mem, after_mem = _memory(night1.checkpoint_id), _memory(night2.checkpoint_id)
    q, stem, old, new = FACTS[APPROVED]
    new_before = value_nll(base, before_mem, q, stem, new)
    new_after = value_nll(base, after_mem, q, stem, new)
    old_after = value_nll(base, after_mem, q, stem, old)
    learned = new_before - new_after
    assert learned > 0.5, f"corrected value not learned: {new_before:.2f} -> {new_after:.2f}"
    assert new_after < old_after - 0.3, f"old value still preferred: new {new_after:.2f}, old {old_after:.2f}"
    for i in (REJECTED, PENDING):
        q, stem, old, new = FACTS[i]
        moved = value_nll(base, before_mem, q, stem, new) - value_nll(base, after_mem, q, stem, new)
        assert moved < 0.5 * learned, f"unapproved correction {i} was learned: moved {moved:.2f}"
