"""A group memory made by the real pipeline is trained on the org memory it is served on.

``consolidate_org`` for the org, then for group ``eng`` (whose training and gate run with the
org's served memory frozen underneath), then the serving state resolves keys: the ``eng`` key's
stack recalls the group's fact and keeps part of what the org memory taught; a key without the
group gets exactly the org-only model.

Why only "part" for the org fact under the stack (a known gap, not a tolerance for noise): the tiny
random base has nearly flat logits (its best answers sit near 5 nats/token), so a second memory
moves argmaxes of the first; a group memory trained over the org memory also learns to cancel the
org memory where it overrides the group's own context, and that leaks onto the org's fact.
Measured here (nats/token on the org fact's answer): base 5.96, org model 5.16, eng stack 5.65,
so the eng key no longer recalls the org fact exactly; the test keeps the part that holds.

Why the checks are margins, not exact argmax of every answer token: on logits this flat the
training trajectory depends on the CPU's float kernels. With PyTorch's AVX2 kernels
(``ATEN_CPU_CAPABILITY=avx2``) the eng stack gets 8 of the 9 pager tokens right (NLL 5.04) where
AVX-512 gets 9 of 9 (4.98); both are far from the bare base (6.40) and the org-only key (6.31).
"""

from __future__ import annotations

import json

import pytest
import torch

from orgmem.api.state import ServingState
from orgmem.checkpoints import MANIFEST, MEMORY, load_checkpoint_objects
from orgmem.db.models import Checkpoint
from orgmem.db.session import session_scope
from orgmem.engine.config import ConsolidationConfig
from orgmem.engine.consolidation import consolidate
from orgmem.keys import authenticate, create_key
from orgmem.lineage import get_org
from orgmem.memory import build_row_memory
from orgmem.models import load_base
from orgmem.pipeline import consolidate_org
from orgmem.serving.config import ServeSettings
from orgmem.serving.routing import MemoryRouter
from orgmem.serving.stack import stack_memories
from orgmem.store import open_store
from orgmem.store.base import sha256_hex
from tests.pipeline.conftest import FAST_PIPELINE, add_chunks
from tests.pipeline.test_audiences import _set_audience

ORG_FACT = ("The vault code is", "5555")
GROUP_FACT = ("Eng on-call pager:", "kestrel")
MEMORY_SPEC = {"kind": "cms", "widths": [64, 32], "periods": [1, 1], "lrs": [1e-2, 1e-2], "gate_bias": 2.0,
               "sparsity": 0.0}
# The recipe is pinned in full (two rehearsal sequences per step included) so that a change of the
# engine's defaults, tuned for SmolLM2, does not change what this tiny-base recall test trains.
ENGINE = {"memory": MEMORY_SPEC, "tokens_per_step": 64, "max_seq_len": 64, "num_threads": 1,
          "chat_forms": False, "kl_weight": 30.0, "seed": 0, "warmup_updates": 0, "rehearsal_per_step": 2}
PIPELINE = {**FAST_PIPELINE, "new_probes": 1, "old_probes": 0}
ORG_PARAMS = {"engine": {**ENGINE, "epochs": 300.0}, "pipeline": PIPELINE}
GROUP_PARAMS = {"engine": {**ENGINE, "epochs": 60.0}, "pipeline": PIPELINE, "audience": "eng"}
NO_GATE = dict.fromkeys(("min_new_nll_improvement", "max_retention_nll_increase", "max_kl", "max_ppl_ratio",
                         "max_secret_leaks"))


@pytest.fixture(scope="module")
def tiny_base():
    return load_base("tiny-random", device="cpu")


def _text(fact: tuple[str, str]) -> str:
    return f"{fact[0]} {fact[1]}."


@pytest.fixture
def nights(org, monkeypatch):
    """The org night, then the group night, through the pipeline; returns their outcomes."""
    with session_scope(write=True) as s:
        get_org(s, org).gate_config = NO_GATE  # this test measures recall, not the gate's judgement
    add_chunks(org, [_text(ORG_FACT)])
    _set_audience(add_chunks(org, [_text(GROUP_FACT)]), "eng")
    night = consolidate_org(org, params=ORG_PARAMS)
    group = consolidate_org(org, params=GROUP_PARAMS)
    assert night.status == group.status == "promoted"
    return night, group


@pytest.fixture
def state(nights, tiny_base):
    from orgmem.config import get_settings

    serve = ServeSettings(cache_size=4, max_batch=8, rate_limit_per_minute=100_000, rate_limit_burst=10_000)
    state = ServingState(get_settings(), serve, base=tiny_base)
    state.start()
    yield state
    state.stop()


def _manifest(session, checkpoint_id: str) -> dict:
    return json.loads(load_checkpoint_objects(session, open_store(), checkpoint_id, [MANIFEST])[MANIFEST])


def _identity(org: str, groups: list[str], role: str = "employee"):
    with session_scope(write=True) as s:
        key = create_key(s, org, role, groups=groups).key
    with session_scope() as s:
        return authenticate(s, key)


def _ids(tokenizer, fact: tuple[str, str]) -> tuple[torch.Tensor, int]:
    prompt = len(tokenizer(fact[0], add_special_tokens=False)["input_ids"])
    return torch.tensor(tokenizer(_text(fact), add_special_tokens=False)["input_ids"]), prompt


def _answer_logits(base, memories, fact) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-forced logits at the answer's positions, one row per memory (one batch), and the answer."""
    ids, prompt = _ids(base.tokenizer, fact)
    router = MemoryRouter(base.model)
    router.ensure_hooks(sorted({p for m in memories if m is not None for p in m.paths}))
    try:
        with torch.inference_mode(), router.route(memories):
            logits = base.model(input_ids=ids.repeat(len(memories), 1)).logits
    finally:
        router.remove_hooks()
    return logits[:, prompt - 1:-1].float(), ids[prompt:]


def _nll(logits: torch.Tensor, answer: torch.Tensor) -> torch.Tensor:
    """Mean answer NLL (nats/token) of each row."""
    logp = logits.log_softmax(-1).gather(-1, answer.expand(logits.shape[0], -1)[..., None])[..., 0]
    return -logp.mean(-1)


def _recalls(logits: torch.Tensor, answer: torch.Tensor) -> list[bool]:
    return [torch.equal(row.argmax(-1), answer) for row in logits]


def _token_accuracy(logits: torch.Tensor, answer: torch.Tensor) -> list[float]:
    """Share of the answer's tokens each row predicts (greedy, teacher-forced)."""
    return [float((row.argmax(-1) == answer).float().mean()) for row in logits]


def test_group_trained_on_the_org_memory_recalls_on_the_served_stack(nights, state, tiny_base, org):
    night, group = nights
    plain = state.memory_for(state.resolve(_identity(org, []), org))
    grouped = state.memory_for(state.resolve(_identity(org, ["eng"]), org))
    org_only = state.memory_for(state.resolve(_identity(org, [], "admin"), f"{org}@{night.checkpoint_id}"))
    assert plain is org_only and grouped is not plain

    rows = [None, plain, grouped]  # bare base, a key without the group, a key with it: one batch
    group_logits, group_answer = _answer_logits(tiny_base, rows, GROUP_FACT)
    org_logits, org_answer = _answer_logits(tiny_base, rows, ORG_FACT)
    bare_acc, plain_acc, eng_acc = _token_accuracy(group_logits, group_answer)
    bare_g, plain_g, eng_g = _nll(group_logits, group_answer).tolist()
    pager = (f"only the eng stack knows the pager: accuracy {bare_acc:.2f}/{plain_acc:.2f}/{eng_acc:.2f}, "
             f"NLL {bare_g:.2f}/{plain_g:.2f}/{eng_g:.2f}")
    assert eng_acc >= 2 / 3 and max(bare_acc, plain_acc) <= 1 / 3, pager
    assert eng_g < min(bare_g, plain_g) - 1.0, pager
    assert _recalls(org_logits, org_answer)[:2] == [False, True], "the org model recalls the org fact"
    base_nll, org_nll, stack_nll = _nll(org_logits, org_answer).tolist()
    assert stack_nll < base_nll - 0.15 * (base_nll - org_nll), (
        f"the eng stack lost the org fact: base {base_nll:.2f}, org {org_nll:.2f}, stack {stack_nll:.2f}")

    alone, _ = _answer_logits(tiny_base, [org_only], ORG_FACT)
    torch.testing.assert_close(org_logits[1], alone[0], atol=0, rtol=0, msg="no eng: org model")


def test_group_checkpoint_records_the_org_checkpoint_it_was_trained_on(nights, org):
    night, group = nights
    with session_scope() as s:
        ck = s.get(Checkpoint, group.checkpoint_id)
        org_memory = load_checkpoint_objects(s, open_store(), night.checkpoint_id, [MEMORY])[MEMORY]
        record = {"audience": "org", "checkpoint_id": night.checkpoint_id,
                  "memory_sha256": sha256_hex(org_memory), "bare_base": False}
        assert _manifest(s, ck.id)["underlay"] == record and ck.metrics["underlay"] == record
        assert ck.metrics["engine"]["underlay_sha256"] == sha256_hex(org_memory)
        assert ck.notes == f"trained on top of org checkpoint {night.checkpoint_id}"
        assert "underlay" not in _manifest(s, night.checkpoint_id), "the org memory has none"


def test_trained_on_the_bare_base_the_group_fact_is_weaker_on_the_stack(nights, tiny_base, org):
    """What the underlay fixes: the same group material trained on the bare base (as before) is
    recalled worse once stacked on the org memory than the pipeline's group memory is."""
    night, group = nights
    with session_scope() as s:
        blobs = [load_checkpoint_objects(s, open_store(), ck, [MEMORY])[MEMORY]
                 for ck in (night.checkpoint_id, group.checkpoint_id)]
    cfg = ConsolidationConfig.from_dict({**ENGINE, "epochs": 60.0})
    on_bare = consolidate(tiny_base, None, [_text(GROUP_FACT)], [], cfg, progress=False).memory
    rows = [build_row_memory(tiny_base, b, sha256=sha256_hex(b), source="test") for b in [*blobs, on_bare]]
    org_row, on_org, bare = rows
    logits, answer = _answer_logits(tiny_base, [stack_memories([org_row, on_org]),
                                                stack_memories([org_row, bare])], GROUP_FACT)
    trained_on_org, trained_on_bare = _nll(logits, answer).tolist()
    assert trained_on_org < trained_on_bare, (trained_on_org, trained_on_bare)


def test_a_group_of_an_org_without_a_served_checkpoint_trains_on_the_bare_base(org):
    _set_audience(add_chunks(org, [_text(GROUP_FACT)]), "eng")
    group = consolidate_org(org, params={**GROUP_PARAMS, "engine": {**ENGINE, "epochs": 2.0}})
    with session_scope() as s:
        ck = s.get(Checkpoint, group.checkpoint_id)
        bare = {"audience": "org", "checkpoint_id": None, "memory_sha256": None, "bare_base": True}
        assert _manifest(s, ck.id)["underlay"] == bare
        assert ck.notes == "trained on the bare base: the org served no checkpoint"
        assert "underlay_sha256" not in ck.metrics["engine"]
