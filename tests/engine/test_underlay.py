"""A memory trained on a frozen underlay (a group's on the org's): what is trained is what serving
stacks, the underlay never changes, the base is bare again afterwards, and the KL reference of
the trained memory is the model beneath it (never written into the base's own cache)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load as st_load

from orgmem.engine.config import ConsolidationConfig
from orgmem.engine.consolidation import Consolidator, consolidate
from orgmem.engine.rehearsal import rehearsal_set
from orgmem.engine.underlay import Underlay
from orgmem.errors import ConflictError
from orgmem.memory import CmsConfig, build_row_memory, load_memory
from orgmem.serving.routing import MemoryRouter
from orgmem.serving.stack import stack_memories
from orgmem.store.base import sha256_hex
from tests.engine.samples import small_config

ORG = ["# Runbook: Heron\n\nHeron listens on port 7415. The cache lives in Redis database 3.\n"]
GROUP = ["The eng on-call rotation hands over at 09:30 and the pager alias is eng-heron-7.\n"]
CMS = CmsConfig(widths=[16, 8], periods=[1, 0], lrs=[1e-2, 1e-2])


def _cfg(**kw) -> ConsolidationConfig:
    return small_config(**{"memory": CMS, "lr_scale": 5.0, **kw})


@pytest.fixture(scope="module")
def org_memory(base) -> bytes:
    return consolidate(base, None, ORG, [], _cfg(), progress=False).memory


def _ids(base) -> torch.Tensor:
    return torch.tensor([base.tokenizer(GROUP[0], add_special_tokens=False)["input_ids"][:48]])


def _row(base, data: bytes):
    return build_row_memory(base, data, sha256=sha256_hex(data), source="test memory")


def test_trained_on_the_underlay_is_what_serving_stacks(base, org_memory):
    ids = _ids(base)
    with torch.no_grad():
        bare = base.model(input_ids=ids).logits
    result = consolidate(base, None, GROUP, [], _cfg(), progress=False, underlay=org_memory)
    assert result.metrics["underlay_sha256"] == sha256_hex(org_memory)
    assert set(st_load(result.memory)) == set(st_load(org_memory)), "only the group's own layer set is saved"
    on_bare = consolidate(base, None, GROUP, [], _cfg(), progress=False)
    assert on_bare.memory != result.memory, "the underlay is part of what the memory was trained on"
    with torch.no_grad():
        torch.testing.assert_close(base.model(input_ids=ids).logits, bare, atol=0, rtol=0,
                                   msg="after training no hook of either memory is left on the base")
        with Underlay(base, org_memory), load_memory(base, result.memory) as handle:
            handle.eval()
            trained = base.model(input_ids=ids).logits
        router = MemoryRouter(base.model)
        stack = stack_memories([_row(base, org_memory), _row(base, result.memory)])
        router.ensure_hooks(stack.paths)
        try:
            with router.route([stack]):
                served = base.model(input_ids=ids).logits
            with router.route([_row(base, result.memory)]):
                group_alone = base.model(input_ids=ids).logits
        finally:
            router.remove_hooks()
    torch.testing.assert_close(trained, served, atol=1e-5, rtol=1e-5)
    assert (served - group_alone).abs().max() > 1e-3, "the org memory underneath changes the function"


def test_underlay_is_frozen_and_attached_first(base, org_memory):
    job = Consolidator(base, None, _cfg(), underlay=org_memory)
    try:
        frozen = [p for m in job.underlay.memory.modules for p in m.parameters()]
        assert frozen and not any(p.requires_grad for p in frozen)
        trained = {id(p) for g in job.handle.param_groups() for p in g.params}
        assert not trained & {id(p) for p in frozen}, "the optimizer never sees the underlay"
        assert job.first_layer <= job.underlay.lowest_layer
        job.run(GROUP, [], progress=False)
        assert all(p.grad is None for p in frozen)
        with pytest.raises(ConflictError, match="already has an underlay"):
            Underlay(base, org_memory).attach()
    finally:
        job.close()
    assert not base.extra.get("memory_underlay"), "close() detaches the underlay"
    consolidate(base, None, GROUP, [], _cfg(max_steps=1), progress=False)  # a plain run works again


def test_kl_reference_is_the_model_beneath_and_the_base_cache_stays_the_base(base, org_memory):
    cfg = _cfg()
    job = Consolidator(base, None, cfg, underlay=org_memory)
    try:
        beneath = job._rehearsal()
    finally:
        job.close()
    bare = rehearsal_set(base, job.first_layer, cfg.kl_topk, cfg.max_seq_len)
    assert len(beneath) == len(bare) and beneath[0] is not bare[0]
    pairs = list(zip(beneath, bare, strict=True))
    assert all(torch.equal(a.ids, b.ids) and torch.equal(a.hidden, b.hidden) for a, b in pairs)
    assert any(not torch.allclose(a.ref_logp, b.ref_logp) for a, b in pairs), (
        "the reference includes the org memory")
    again = Consolidator(base, None, cfg)
    try:
        plain = again._rehearsal()
    finally:
        again.close()
    assert plain is bare, "the base's cached reference is untouched"
