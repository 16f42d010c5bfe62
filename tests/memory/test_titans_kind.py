"""The ``titans`` kind on the tiny base: exact base at attach, write/read modes, save/load, continuity."""

from __future__ import annotations

import pytest
import torch

from orgmem.errors import IncompatibleBaseError, OrgmemError
from orgmem.memory import attach, load_memory, save_memory
from orgmem.memory.titans import TitansConfig
from orgmem.memory.titans.init_store import INIT_FILE, meta_dir, save_meta_init
from orgmem.models import BaseModel, model_fingerprint
from orgmem.models.tiny import build_tiny_model, build_tiny_tokenizer

pytestmark = pytest.mark.usefixtures("private_models_dir")
SMALL = dict(heads=2, dim_head=16, chunk_size=4, meta_init="none")


def other_base() -> BaseModel:
    model = build_tiny_model(seed=1)
    for p in model.parameters():
        p.requires_grad_(False)
    return BaseModel("tiny-other", model, build_tiny_tokenizer(), model_fingerprint(model),
                     torch.device("cpu"), torch.float32)


def ids(n: int = 23, batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randint(3, 500, (batch, n), generator=torch.Generator().manual_seed(seed))


def open_gates(handle) -> None:
    titans = handle.components[-1]
    with torch.no_grad():
        for memory in titans.memories.values():
            memory.gate_scale.fill_(1.0)
            memory.to_gate.bias.fill_(2.0)


@torch.no_grad()
def logits(handle, x, **kw) -> torch.Tensor:
    return handle(x, **kw).logits


def test_default_layer_is_around_three_quarters_depth():
    assert TitansConfig().resolve_layers(30) == [22]
    assert TitansConfig().resolve_layers(4) == [3]
    assert TitansConfig(layers=[1, 2]).resolve_layers(4) == [1, 2]
    with pytest.raises(OrgmemError, match="layers"):
        TitansConfig(layers=[7]).resolve_layers(4)


@pytest.mark.parametrize("spec", ["titans", "cms+titans"])
def test_attach_computes_exactly_the_base_function(base, spec):
    x = ids()
    with torch.no_grad():
        reference = base.model(x).logits
    handle = attach(base, spec)
    try:
        open_gates(handle)  # even with the gate open, an empty memory reads zero
        assert (logits(handle, x) - reference).abs().max() <= 1e-6
    finally:
        handle.detach()
    assert torch.equal(logits(handle, x), reference)


def test_train_mode_writes_eval_reads_disabled_is_base(base):
    x = ids()
    reference = base.model(x).logits.detach()
    with attach(base, TitansConfig(**SMALL)) as handle:
        open_gates(handle)
        titans = handle.components[0]
        logits(handle, x)  # eval mode (the default): read only
        assert titans.states["3"].pending == 0 and titans.states["3"].weights[-1].abs().max() == 0
        handle.train()
        with titans.no_write():
            logits(handle, x)
        assert titans.states["3"].weights[-1].abs().max() == 0
        logits(handle, x)  # writes both rows, one stream
        assert titans.states["3"].weights[-1].abs().max() > 0
        assert titans.states["3"].pending == (2 * 23) % 4
        handle.eval()
        before = {k: v.clone() for k, v in handle.memory_state_dict().items()}
        changed = logits(handle, x)
        assert (changed - reference).abs().max() > 1e-4
        after = handle.memory_state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)
        with handle.disabled():
            assert torch.equal(logits(handle, x), reference)


def consolidate(handle, batches) -> None:
    handle.train()
    for x, mask in batches:
        logits(handle, x, attention_mask=mask)
    handle.eval()


def test_night_two_continued_from_saved_state_equals_one_long_run(base):
    n1, n2 = ids(13, seed=1), ids(9, seed=2)
    ones = [torch.ones_like(n1), torch.ones_like(n2)]
    probe = ids(11, batch=1, seed=3)
    with attach(base, TitansConfig(**SMALL)) as h:
        open_gates(h)
        consolidate(h, [(n1, ones[0]), (n2, ones[1])])
        want_state, want = h.memory_state_dict() | h.train_state_dict(), logits(h, probe)
    with attach(base, TitansConfig(**SMALL)) as h:
        open_gates(h)
        consolidate(h, [(n1, ones[0])])
        blob, train_state = save_memory(h), h.train_state_dict()
    h2 = load_memory(base, blob)
    try:
        h2.load_train_state_dict(train_state)
        consolidate(h2, [(n2, ones[1])])
        got_state = h2.memory_state_dict() | h2.train_state_dict()
        assert torch.equal(logits(h2, probe), want)
    finally:
        h2.detach()
    assert got_state.keys() == want_state.keys()
    for k in want_state:
        torch.testing.assert_close(got_state[k], want_state[k], atol=1e-6, rtol=0, msg=k)


def test_padding_never_enters_the_memory(base):
    a, b = ids(10, batch=1, seed=4), ids(6, batch=1, seed=5)
    padded = torch.cat([a, torch.cat([b, torch.zeros(1, 4, dtype=torch.long)], 1)])
    mask = torch.cat([torch.ones(1, 10), torch.cat([torch.ones(1, 6), torch.zeros(1, 4)], 1)]).long()
    with attach(base, TitansConfig(**SMALL)) as h:
        open_gates(h)
        consolidate(h, [(a, torch.ones_like(a)), (b, torch.ones_like(b))])
        want = h.train_state_dict() | h.memory_state_dict()
    with attach(base, TitansConfig(**SMALL)) as h:
        open_gates(h)
        consolidate(h, [(padded, mask)])
        got = h.train_state_dict() | h.memory_state_dict()
    for k in want:
        torch.testing.assert_close(got[k], want[k], atol=1e-6, rtol=0, msg=k)


def test_kv_cached_decoding_reads_what_a_full_pass_reads(base):
    x = ids(15, batch=1, seed=6)
    with attach(base, TitansConfig(**SMALL)) as h:
        open_gates(h)
        consolidate(h, [(ids(20, seed=7), None)])
        full = logits(h, x)[:, -1]
        with torch.no_grad():
            past = h(x[:, :-1], use_cache=True).past_key_values
            step = h(x[:, -1:], cache=past, use_cache=True).logits[:, -1]
    torch.testing.assert_close(step, full, atol=1e-5, rtol=1e-5)


def test_memory_blob_refused_on_a_foreign_base(base):
    with attach(base, TitansConfig(**SMALL)) as h:
        blob = save_memory(h)
    with pytest.raises(IncompatibleBaseError, match="tiny-other"):
        load_memory(other_base(), blob)


def test_state_dict_with_missing_or_misshaped_keys_is_refused(base):
    with attach(base, TitansConfig(**SMALL)) as h:
        titans = h.components[0]
        state = titans.memory_state_dict()
        missing = dict(state)
        missing.pop("3.weights.1")
        with pytest.raises(OrgmemError, match=r"3\.weights\.1"):
            titans.load_memory_state_dict(missing)
        bad = dict(state) | {"3.weights.0": torch.zeros(1, 2, 3, 3)}
        with pytest.raises(OrgmemError, match=r"wrong shape.*3\.weights\.0"):
            titans.load_memory_state_dict(bad)
        with pytest.raises(OrgmemError, match="3.pending_k"):
            titans.load_train_state_dict({"3.momentum.0": torch.zeros(1)})


def write_init(base, config: TitansConfig, value: float) -> None:
    with attach(base, config) as h:
        titans = h.components[0]
        tensors = {k: torch.full_like(v, value) for k, v in titans.meta_tensors().items()}
        save_meta_init(meta_dir(base) / INIT_FILE, tensors, base=base, config=titans.config, info={})


def test_meta_initialisation_loaded_at_attach_and_refused_elsewhere(base):
    write_init(base, TitansConfig(**SMALL), 0.25)
    auto = TitansConfig(**(SMALL | {"meta_init": "auto"}))
    with attach(base, auto) as h:
        params = h.components[0].meta_tensors()
        assert all(torch.all(v == 0.25) for v in params.values())
        # an empty memory still reads zero: the base function is preserved after meta-training too
        x = ids()
        assert torch.equal(logits(h, x), base.model(x).logits)
    foreign = TitansConfig(**(SMALL | {"meta_init": str(meta_dir(base) / INIT_FILE)}))
    with pytest.raises(IncompatibleBaseError, match="tiny-random"):
        attach(other_base(), foreign)
    other_shape = TitansConfig(**(SMALL | {"heads": 3, "meta_init": "required"}))
    with pytest.raises(OrgmemError, match="heads"):
        attach(base, other_shape)
    with attach(base, TitansConfig(**(SMALL | {"heads": 3}))) as h:  # auto: falls back, with a warning
        assert h.components[0].meta_init_path is None


def test_direct_layer_calls_write_only_the_tokens_they_allow(base):
    from orgmem.models.layers import embed, run_layers

    x = ids(12, batch=1, seed=8)
    allow = torch.zeros(1, 12, dtype=torch.bool)
    allow[:, :5] = True
    with attach(base, TitansConfig(**(SMALL | {"chunk_size": 16}))) as h:
        titans = h.components[0]
        h.train()
        with torch.no_grad():
            hidden = run_layers(base.model, embed(base.model, x), 0, 3)
            h(x, attention_mask=torch.zeros_like(x))  # an all-padding model call writes nothing...
            assert titans.states["3"].pending == 0
            titans.set_token_mask(allow)
            run_layers(base.model, hidden, 3, 4)
            assert titans.states["3"].pending == 5
            titans.set_token_mask(None)
            run_layers(base.model, hidden, 3, 4)  # ...and its mask does not linger: all 12 written
            assert titans.states["3"].pending == (5 + 12) % 16
