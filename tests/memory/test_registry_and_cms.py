"""Registry rules, config validation and the CMS kind's structure (levels, periods, init)."""

from __future__ import annotations

import pytest
import torch

from orgmem.errors import NotFoundError, OrgmemError
from orgmem.memory import CmsConfig, CmsMemory, attach, parse_spec, register_memory_kind
from orgmem.memory.config import MemoryConfig
from orgmem.models import load_base


@pytest.fixture(scope="module")
def base():
    return load_base("tiny-random")


def test_duplicate_and_mismatched_registration_refused():
    with pytest.raises(ValueError, match="already registered"):
        register_memory_kind("cms", CmsConfig, CmsMemory)
    with pytest.raises(ValueError, match="expected 'other'"):
        register_memory_kind("other", CmsConfig, CmsMemory)


def test_one_registry_names_every_form_of_a_kind():
    from orgmem.memory import get_kind, servable_kinds
    from orgmem.memory.cms.rows import cms_rows
    from orgmem.memory.lora.rows import lora_rows
    from orgmem.memory.titans.rows import titans_rows

    assert [get_kind(k).rows for k in ("cms", "lora", "titans")] == [cms_rows, lora_rows, titans_rows]
    assert {"cms", "lora", "titans"} <= set(servable_kinds())


def test_spec_parsing_and_errors():
    assert [c.kind for c in parse_spec("cms+lora")] == ["cms", "lora"]
    assert parse_spec(CmsConfig(widths=[8, 8], periods=[1, 2], lrs=[1e-3, 1e-3]))[0].widths == [8, 8]
    with pytest.raises(NotFoundError, match="'nope'"):
        parse_spec("cms+nope")
    with pytest.raises(OrgmemError, match="at most once"):
        parse_spec("cms+cms")
    with pytest.raises(OrgmemError, match="unknown field"):
        parse_spec({"kind": "cms", "width": 3})
    with pytest.raises(ValueError, match=">= 2 levels"):
        CmsConfig(widths=[8], periods=[1], lrs=[1e-3])


def test_config_roundtrip_and_layer_resolution(base):
    with attach(base, CmsConfig(layers=[1, 3])) as handle:
        cfg = handle.config
        assert cfg["components"][0]["layers"] == [1, 3]
        assert parse_spec(cfg)[0] == handle.components[0].config
    assert MemoryConfig().resolve_layers(30) == list(range(22, 30))  # last quarter, rounded up
    assert MemoryConfig().resolve_layers(4) == [3]
    with pytest.raises(OrgmemError, match=r"layers \[7\] invalid"):
        attach(base, CmsConfig(layers=[7]))
    assert base.extra.get("attached_memory") is None or not base.extra["attached_memory"].attached


def test_cms_levels_copy_pretrained_neurons_with_zero_output(base):
    cfg = CmsConfig(layers=[2], widths=[16, 8, 8], periods=[1, 4, 0], lrs=[1e-3, 2e-3, 3e-3])
    with attach(base, cfg) as handle:
        block = handle.components[0].blocks["2"]
        mlp = base.model.model.layers[2].mlp
        assert torch.equal(block.levels[0].gate_proj.weight, mlp.gate_proj.weight[:16])
        assert torch.equal(block.levels[1].up_proj.weight, mlp.up_proj.weight[16:24])
        assert all(torch.count_nonzero(lv.down_proj.weight) == 0 for lv in block.levels)
        assert torch.sigmoid(block.gate.bias).item() == pytest.approx(0.2689, abs=1e-3)
        groups = {g.name: g for g in handle.param_groups()}
        assert [(groups[f"cms.level{j}"].period, groups[f"cms.level{j}"].lr) for j in range(3)] == [
            (1, 1e-3), (4, 2e-3), (0, 3e-3)]
        assert "cms.gate" in groups


def test_cms_gate_sparsity_uses_token_mask(base):
    with attach(base, CmsConfig(layers=[3], sparsity=0.5)) as handle:
        ids = torch.randint(3, 512, (2, 6), generator=torch.Generator().manual_seed(0))
        handle(ids)
        full = handle.aux_losses()["cms.gate_sparsity"]
        assert full.item() == pytest.approx(0.5 * torch.sigmoid(torch.tensor(-1.0)).item(), rel=1e-5)
        mask = torch.zeros(2, 6, dtype=torch.bool)
        mask[0, :2] = True
        assert handle.aux_losses(mask)["cms.gate_sparsity"].item() == pytest.approx(full.item(), rel=1e-5)
    with attach(base, CmsConfig(layers=[3], gate=False)) as handle:
        handle(ids)
        assert handle.aux_losses() == {}
