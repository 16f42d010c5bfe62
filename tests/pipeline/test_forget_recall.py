"""The forget guarantee, measured on a real engine: after forgetting a planted fact and
re-consolidating, the tiny base's answer NLL for it is back at the level of a fact it never saw,
while the other facts stay learned.

Why this tolerance: re-consolidating the remaining facts still teaches the memory the org's
phrasing ("The X is Y."), which lowers the NLL of *any* answer in that frame a little. A control
fact that was never in any document measures that shift; the forgotten fact may improve on the
base by no more than the control does plus ``SLACK`` nats/token (seed noise between facts, about
0.1 in our runs), and far less than while it was learned. Measured values on this recipe: base
about 6.3 nats/token for every answer, learned about 5.2, after the forget: planted 6.2 (control
6.2), the others still about 5.1-5.4.
"""

from __future__ import annotations

import pytest
import torch

from orgmem.checkpoints import MEMORY, load_checkpoint_objects
from orgmem.db import session_scope
from orgmem.eval.generation import encode_text
from orgmem.eval.scoring import score_targets
from orgmem.lineage import get_org
from orgmem.models import load_base
from orgmem.models.tokens import pad_token_id
from orgmem.pipeline import consolidate_org
from orgmem.pipeline.evaluation import memory_on
from orgmem.pipeline.forget import forget_document
from orgmem.store import open_store
from tests.pipeline.conftest import FAST_PIPELINE, add_chunks

FACTS = [
    ("The Heron router listens on port", "7415"),  # planted: forgotten below
    ("The Ledgerfox retry limit is", "seventeen"),
    ("The Basalt freezer alarm code is", "quartz"),
    ("The Osprey build server is called", "marlin"),
]
CONTROL = ("The Kestrel backup window opens at", "midnight")  # in no document
# Enough passes that every fact's answer NLL drops by about 1 nat/token (about 2 s per night).
ENGINE = {"epochs": 60.0, "lr_scale": 3.0, "tokens_per_step": 256, "max_seq_len": 128, "num_threads": 1,
          "chat_forms": False, "kl_weight": 0.0, "seed": 0}
PARAMS = {"engine": ENGINE, "pipeline": {**FAST_PIPELINE, "new_probes": 2, "old_probes": 2}}
GATES = ("min_new_nll_improvement", "max_retention_nll_increase", "max_kl", "max_ppl_ratio",
         "max_secret_leaks")
NO_GATE = dict.fromkeys(GATES)
SLACK = 0.15


@pytest.fixture(scope="module")
def base():
    torch.set_num_threads(1)
    return load_base("tiny-random", device="cpu")


def _nll(base, memory: bytes | None) -> list[float]:
    """Mean answer NLL (nats/token) of each fact, then the control, under ``memory`` (None: base)."""
    tok, pairs = base.tokenizer, []
    for cloze, answer in [*FACTS, CONTROL]:
        prefix, full = encode_text(tok, cloze), encode_text(tok, f"{cloze} {answer}")
        pairs.append((prefix, full[len(prefix):]))
    with memory_on(base, memory) as model:
        return [s.mean_nll for s in score_targets(model, pairs, pad_id=pad_token_id(tok))]


def _memory(checkpoint_id: str) -> bytes:
    with session_scope() as s:
        return load_checkpoint_objects(s, open_store(), checkpoint_id, [MEMORY])[MEMORY]


def test_forgotten_fact_returns_to_base_level_others_stay(org, base):
    with session_scope(write=True) as s:
        get_org(s, org).gate_config = NO_GATE  # this test measures recall, not the gate's judgement
    add_chunks(org, [f"{cloze} {answer}. Remember: {cloze.lower()} {answer}." for cloze, answer in FACTS])
    with session_scope() as s:
        planted = _first_document(s, org)

    at_base = _nll(base, None)
    night = consolidate_org(org, params=PARAMS)
    assert night.status == "promoted"
    learned = _nll(base, _memory(night.checkpoint_id))
    for i in range(len(FACTS)):
        assert learned[i] < at_base[i] - 0.5, f"fact {i} not learned: {at_base[i]:.2f} -> {learned[i]:.2f}"

    with session_scope() as s:
        result = forget_document(s, org, planted, actor="test", reason="planted fact")
    assert result.quarantined == [night.checkpoint_id] and result.head_after is None
    again = consolidate_org(org, params=PARAMS)
    assert again.status == "promoted" and again.n_new == len(FACTS) - 1
    after = _nll(base, _memory(again.checkpoint_id))

    control_gain = at_base[-1] - after[-1]
    planted_gain = at_base[0] - after[0]
    assert planted_gain <= max(control_gain, 0.0) + SLACK, (
        f"forgotten fact still recalled: base {at_base[0]:.2f}, learned {learned[0]:.2f}, "
        f"after {after[0]:.2f} "
        f"(control gained {control_gain:.2f})")
    assert planted_gain < 0.5 * (at_base[0] - learned[0])
    for i in range(1, len(FACTS)):
        assert after[i] < at_base[i] - 0.5, f"fact {i} was lost: {at_base[i]:.2f} -> {after[i]:.2f}"


def _first_document(session, org_slug: str) -> str:
    """The id of the planted (first) fact's document."""
    from sqlalchemy import select

    from orgmem.db.models import Document

    org = get_org(session, org_slug)
    return str(session.scalar(select(Document.id).where(Document.org_id == org.id).order_by(Document.id)))
