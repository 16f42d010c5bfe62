"""Unapproved and rejected corrections change nothing, in the counterfactual form: a night with an
approved, a pending and a rejected correction trains exactly what the same night with only the
approved one trains.

Two identical orgs on the tiny base: ``acme`` gets all three corrections, ``twin`` only the
approved one (the pending and rejected ones never exist there). Proven on both halves of a night:
the inputs (``acme``'s night inputs are equal, digest included, before and after the unapproved
corrections are added, and the committed checkpoint records that digest), and the result (both
orgs' night-2 memories are the same bytes, so they serve the same replies). The orgs' night-1
memories are compared first: training is deterministic here, so a difference at night 2 could only
come from the inputs.
"""

from __future__ import annotations

import hashlib

from orgmem.checkpoints import MEMORY, load_checkpoint_objects
from orgmem.config import get_settings
from orgmem.db import session_scope
from orgmem.db.models import Checkpoint, CheckpointObject, Correction
from orgmem.feedback.corrections import add_correction, review
from orgmem.lineage import create_org, get_org
from orgmem.pipeline import consolidate_org
from orgmem.pipeline.config import resolve
from orgmem.pipeline.inputs import Inputs, gather_inputs
from orgmem.pipeline.underlay import underlay_digest
from orgmem.store import open_store
from tests.pipeline.conftest import FAST_PIPELINE, add_chunks
from tests.pipeline.feedback_support import FACTS, NO_GATE

TWIN = "twin"
# max_seq_len 256: a chat turn on this tokenizer's template needs more than 128 tokens before the
# answer, and a correction whose answer is cut off is no item at all (nothing would be compared);
# no max_steps: the whole night is trained, so a leaked correction cannot fall past a step cap
ENGINE = {"epochs": 1.0, "tokens_per_step": 512, "max_seq_len": 256, "num_threads": 1,
          "kl_weight": 0.0, "seed": 0}
PARAMS = {"engine": ENGINE, "pipeline": {**FAST_PIPELINE, "new_probes": 2, "old_probes": 2}}
APPROVED, PENDING, REJECTED = FACTS


def _memory(checkpoint_id: str) -> bytes:
    with session_scope() as s:
        return load_checkpoint_objects(s, open_store(), checkpoint_id, [MEMORY])[MEMORY]


def _recorded_sha(checkpoint_id: str) -> str:
    with session_scope() as s:
        row = s.get(CheckpointObject, (checkpoint_id, MEMORY))
        assert row is not None, f"checkpoint {checkpoint_id} has no memory object"
        return row.sha256


def _propose(org: str, fact: tuple[str, str, str, str], *, approve: bool | None) -> str:
    """A correction of ``fact``'s answer; approved, rejected, or left pending (``None``)."""
    question, stem, old, new = fact
    with session_scope(write=True) as s:
        row = add_correction(s, get_org(s, org), audience="org", question=question,
                             model_answer=f"{stem}{old}.", proposed=f"{stem}{new}.", proposer="key:asker",
                             proposer_key_id=None, extra={})
        if approve is not None:
            review(s, get_org(s, org), row, approve=approve, actor="key:reviewer")
        return row.id


def _night_inputs(org: str) -> Inputs:
    """The inputs ``consolidate_org`` would gather for ``org`` now, digest formed as it forms it."""
    cfg = resolve(PARAMS)
    with session_scope() as s:
        row = get_org(s, org)
        extra = {"base_model": get_settings().base_model, "engine": cfg.engine.to_dict(),
                 **underlay_digest(row, "org")}
        return gather_inputs(s, row, replay_max=cfg.pipeline.replay_max_chunks, digest_extra=extra,
                             policy=cfg.pipeline.replay_policy)


def test_unapproved_and_rejected_corrections_train_exactly_what_the_approved_alone_train(org):
    with session_scope(write=True) as s:
        create_org(s, TWIN, "Acme Corp", actor="test")
        for slug in (org, TWIN):
            get_org(s, slug).gate_config = NO_GATE  # what is trained, not what the gate decides
    for slug in (org, TWIN):
        add_chunks(slug, [f"{stem}{old}. Remember: {stem.lower()}{old}." for _, stem, old, _ in FACTS])
    night1 = {slug: consolidate_org(slug, params=PARAMS) for slug in (org, TWIN)}
    assert {n.status for n in night1.values()} == {"promoted"}
    assert _memory(night1[org].checkpoint_id) == _memory(night1[TWIN].checkpoint_id), \
        "the same night is not byte-identical in two orgs: the comparison below would prove nothing"

    approved = {slug: _propose(slug, APPROVED, approve=True) for slug in (org, TWIN)}
    only_approved = _night_inputs(org)
    pending = _propose(org, PENDING, approve=None)
    rejected = _propose(org, REJECTED, approve=False)
    with_unapproved = _night_inputs(org)
    assert with_unapproved == only_approved  # digest, corrections, chunks, replay: all of it
    assert [t.id for t in with_unapproved.corrections] == [approved[org]]

    night2 = {slug: consolidate_org(slug, params=PARAMS) for slug in (org, TWIN)}
    assert {n.status for n in night2.values()} == {"promoted"}
    assert night2[org].n_new == 0 and night2[org].parent_id == night1[org].checkpoint_id
    acme_ck, twin_ck = night2[org].checkpoint_id, night2[TWIN].checkpoint_id
    with session_scope() as s:
        assert s.get(Checkpoint, acme_ck).input_digest == only_approved.digest
        assert s.get(Checkpoint, acme_ck).metrics["feedback"]["ids"] == [approved[org]]
        statuses = {c.id: c.status for c in s.query(Correction).all()}
    assert statuses[pending] == "pending" and statuses[rejected] == "rejected"
    assert statuses[approved[org]] == statuses[approved[TWIN]] == "consumed"

    with_them, without_them = _memory(acme_ck), _memory(twin_ck)
    assert with_them != _memory(night1[org].checkpoint_id), "the approved correction trained nothing"
    assert hashlib.sha256(with_them).hexdigest() == hashlib.sha256(without_them).hexdigest()
    assert with_them == without_them
    assert _recorded_sha(acme_ck) == _recorded_sha(twin_ck) == hashlib.sha256(with_them).hexdigest()
    items = night2[org].metrics["engine"]["items"]
    assert items["correction"] > 0 and items["unlikely"] > 0, f"no correction was trained: {items}"
    steps = ("steps", "tokens", "items", "loss_first", "loss_last")
    assert {k: night2[org].metrics["engine"][k] for k in steps} == \
        {k: night2[TWIN].metrics["engine"][k] for k in steps}
