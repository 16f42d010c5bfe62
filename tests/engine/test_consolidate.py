"""Consolidation on the tiny base: determinism, resume == continuous, level periods, learning."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load as st_load

from orgmem.engine.config import ConsolidationConfig
from orgmem.engine.consolidation import Consolidator, consolidate
from orgmem.engine.optim import PeriodicOptimizer
from orgmem.errors import IncompatibleBaseError, IntegrityError, OrgmemError
from orgmem.memory import CmsConfig, ParamGroup, attach, load_memory, save_memory
from orgmem.models import load_base
from tests.engine.samples import NIGHT1, small_config

NIGHT2 = ["[09:14] marit: The VPN endpoint is vpn2.kestrel.ee\n",
          "# News\n\nKestrel Freight signed a contract with Klaipeda. The warehouse holds 4,800 pallets.\n"]


_cfg = small_config


def _weights(memory: bytes) -> dict[str, torch.Tensor]:
    return st_load(memory)


def _assert_same(a: dict, b: dict, atol: float = 0.0) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k].float() - b[k].float()).abs().max().item() <= atol, k


def test_deterministic_under_seed_and_seed_matters(base):
    r1 = consolidate(base, None, NIGHT1, [], _cfg(), progress=False)
    r2 = consolidate(base, None, NIGHT1, [], _cfg(), progress=False)
    r3 = consolidate(base, None, NIGHT1, [], _cfg(seed=1), progress=False)
    assert r1.memory == r2.memory and r1.train_state == r2.train_state
    assert r1.memory != r3.memory
    assert r1.metrics["steps"] >= 3 and r1.n_tokens > 0 and r1.metrics["kl_last"] is not None


def test_resume_from_bytes_equals_one_continuous_run(base):
    cfg = _cfg()
    job = Consolidator(base, None, cfg)
    job.run(NIGHT1, [], progress=False)
    job.run(NIGHT2, NIGHT1, progress=False)
    continuous_memory, continuous_state = job.memory_bytes(), job.train_state_bytes()
    job.close()

    night1 = consolidate(base, None, NIGHT1, [], cfg, progress=False)
    night2 = consolidate(base, night1.memory, NIGHT2, NIGHT1, cfg, train_state=night1.train_state,
                         progress=False)
    _assert_same(_weights(night2.memory), _weights(continuous_memory))
    _assert_same(st_load(night2.train_state), st_load(continuous_state))
    # without the train state the optimizer restarts: a different result
    fresh = consolidate(base, night1.memory, NIGHT2, NIGHT1, cfg, progress=False)
    assert fresh.memory != night2.memory


def test_levels_update_only_at_their_boundary(base):
    cfg = _cfg(memory=CmsConfig(widths=[8, 8, 8], periods=[1, 4, 0], lrs=[1e-2] * 3), max_steps=3)
    with attach(base, cfg.memory) as handle:
        before = {k: v.clone() for k, v in handle.memory_state_dict().items()}
        job = Consolidator(base, handle, cfg)
        seen: list[dict] = []
        step = job._step

        def spy(items, rehearsal):
            out = step(items, rehearsal)
            seen.append({k: v.clone() for k, v in handle.memory_state_dict().items()})
            return out

        job._step = spy
        job.run(NIGHT1, [], progress=False)
        after = handle.memory_state_dict()

    def changed(state: dict, level: int) -> bool:
        keys = [k for k in state if f"levels.{level}." in k]
        return any(not torch.equal(state[k], before[k]) for k in keys)

    assert len(seen) == 3
    assert changed(seen[0], 0)  # period 1: every step
    assert not any(changed(s, 1) for s in seen) and not changed(after, 1)  # period 4: no boundary yet
    assert not any(changed(s, 2) for s in seen) and changed(after, 2)  # period 0: at the end only


def test_periodic_optimizer_accumulates_and_averages():
    p = torch.nn.Parameter(torch.zeros(2))
    q = torch.nn.Parameter(torch.zeros(2))
    opt = PeriodicOptimizer([ParamGroup("fast", [p], 0.1, 1), ParamGroup("slow", [q], 0.1, 2)])
    for g in (1.0, 3.0):
        p.grad, q.grad = torch.full((2,), g), torch.full((2,), g)
        opt.accumulate()
    assert opt.counts == [0, 0] and opt.global_step == 2
    assert torch.allclose(q, torch.full((2,), -0.1))  # one Adam step on the averaged gradient
    state = opt.state_tensors()
    clone = PeriodicOptimizer([ParamGroup("fast", [p], 0.1, 1), ParamGroup("slow", [q], 0.1, 2)])
    clone.load_state_tensors(state)
    assert clone.global_step == 2
    assert torch.equal(clone.adam.state[q]["exp_avg"], opt.adam.state[q]["exp_avg"])


def test_warmup_ramps_each_groups_first_updates():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = PeriodicOptimizer([ParamGroup("slow", [p], 0.1, 2)], warmup_updates=4)
    for _ in range(2):
        p.grad = torch.ones(1)
        opt.accumulate()
    assert p.item() == pytest.approx(-0.1 / 4, rel=1e-4)  # first update at a quarter of the lr
    assert int(opt.state_tensors()["opt.slow.updates"]) == 1


def test_training_lowers_loss_on_the_material(base):
    ids = base.tokenizer(NIGHT1[0], return_tensors="pt")["input_ids"]
    before = base.model(ids, labels=ids).loss.item()
    result = consolidate(base, None, NIGHT1, [], _cfg(epochs=6, kl_weight=1.0), progress=False)
    with load_memory(base, result.memory) as handle:
        after = handle(ids, labels=ids).loss.item()
    assert after < before - 0.1
    assert result.metrics["loss_last"] < result.metrics["loss_first"]


def test_bad_inputs_are_refused_by_name(base):
    with pytest.raises(OrgmemError, match="nothing to consolidate"):
        consolidate(base, None, ["", "  "], [], _cfg(), progress=False)
    first = consolidate(base, None, NIGHT1, [], _cfg(), progress=False)
    lora = consolidate(base, None, NIGHT1, [], _cfg(memory="lora"), progress=False)
    with pytest.raises(IntegrityError, match="memory config"):
        consolidate(base, first.memory, NIGHT2, [], _cfg(), train_state=lora.train_state, progress=False)
    with pytest.raises(IntegrityError, match="parent train state"):
        consolidate(base, first.memory, NIGHT2, [], _cfg(), train_state=b"nonsense!", progress=False)
    with pytest.raises(OrgmemError, match="unknown field"):
        ConsolidationConfig.from_dict({"epochs": 1, "epoch": 2})
    assert base.extra.get("attached_memory") is None or not base.extra["attached_memory"].attached
    from orgmem.models.fingerprint import model_fingerprint
    from orgmem.models.loader import BaseModel
    from orgmem.models.tiny import build_tiny_model

    other_model = build_tiny_model(seed=2)
    other = BaseModel("other", other_model, base.tokenizer, model_fingerprint(other_model),
                      base.device, base.dtype)
    with pytest.raises(IncompatibleBaseError):
        consolidate(other, first.memory, NIGHT2, [], _cfg(), progress=False)


def test_lora_kind_consolidates_too(base):
    result = consolidate(base, None, NIGHT1, [], _cfg(memory="lora"), progress=False)
    assert result.metrics["trainable_params"] > 0 and result.metrics["loss_last"] is not None


@pytest.mark.slow
def test_smollm2_two_steps_small_checkpoint():
    smol = load_base("smollm2-135m-instruct", device="cpu")
    cfg = ConsolidationConfig(max_steps=2, kl_weight=0.0, tokens_per_step=128, max_seq_len=128, num_threads=2)
    result = consolidate(smol, None, NIGHT1, [], cfg, progress=False)
    base_bytes = sum(p.numel() * p.element_size() for p in smol.model.parameters())
    assert result.metrics["steps"] == 2
    assert len(result.memory) <= 0.02 * base_bytes  # checkpoint <= 2% of the base
    with load_memory(smol, result.memory) as handle:
        assert handle.components[0].layers == list(range(22, 30))


def test_titans_alone_consolidates_by_forward_writes_and_detaches(base):
    """Titans trains no parameter by gradient: the night writes its memory state, nothing crashes,
    and the shared base is free again afterwards."""
    from orgmem.memory.titans import TitansConfig

    cfg = _cfg(memory=TitansConfig(meta_init="none"))
    with attach(base, cfg.memory) as fresh_handle:
        fresh = _weights(save_memory(fresh_handle))
    result = consolidate(base, None, NIGHT1, [], cfg, progress=False)
    written = _weights(result.memory)
    changed = {k for k in written if not torch.equal(written[k], fresh[k])}
    assert changed and all(".weights." in k for k in changed)  # memory state written, meta frozen
    attach(base, "cms").detach()  # the base is not left with a handle attached


def test_night_lr_decay_is_cosine_to_the_final_fraction_and_changes_the_result(base):
    from orgmem.engine.consolidation import night_lr_factor

    assert [night_lr_factor(i, 5, 1.0) for i in range(5)] == [1.0] * 5
    factors = [night_lr_factor(i, 5, 0.1) for i in range(5)]
    assert factors[0] == pytest.approx(1.0) and factors[-1] == pytest.approx(0.1)
    assert factors[2] == pytest.approx(0.55) and factors == sorted(factors, reverse=True)
    constant = consolidate(base, None, NIGHT1, [], _cfg(), progress=False)
    decayed = consolidate(base, None, NIGHT1, [], _cfg(lr_decay=0.1), progress=False)
    assert decayed.memory != constant.memory
    with pytest.raises(OrgmemError, match="lr_decay"):
        ConsolidationConfig(lr_decay=1.5)
