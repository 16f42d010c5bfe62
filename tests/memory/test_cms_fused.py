"""The serving copy of a CMS block computes what the trained ``CmsBlock`` computes."""

from __future__ import annotations

import pytest
import torch

from orgmem.memory.cms.fused import FusedCmsBlock
from orgmem.memory.cms.layer import CmsBlock
from orgmem.models import load_base


@pytest.fixture(scope="module")
def tiny_base():
    return load_base("tiny-random", device="cpu")


def _trained_block(tiny_base, widths: list[int], gate: bool, seed: int) -> CmsBlock:
    mlp = tiny_base.model.model.layers[0].mlp
    block = CmsBlock(mlp, widths, "silu", gate, gate_bias=-1.0).float().eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in block.parameters():  # zero-init projections would hide a wrong chain
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return block


@pytest.mark.parametrize("gate", [True, False])
@pytest.mark.parametrize("shape", [(1, 1), (3, 1), (2, 7)])
def test_fused_block_matches_the_trained_block(tiny_base, gate, shape):
    block = _trained_block(tiny_base, [16, 8, 4], gate, seed=len(shape) + gate)
    hidden = block.levels[0].gate_proj.in_features
    x = torch.randn(*shape, hidden, generator=torch.Generator().manual_seed(1))
    out = torch.randn(*shape, hidden, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        delta, _ = block(x)
        expected = out + delta
        got = FusedCmsBlock(block).add_delta(x, out)
    assert delta.abs().max() > 1e-3, "the block must change the output for this to test anything"
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)


def test_fused_block_keeps_bf16_outputs_and_fp32_weights(tiny_base):
    fused = FusedCmsBlock(_trained_block(tiny_base, [8, 4], True, seed=5))
    hidden = fused.first.shape[1]
    x = torch.randn(2, 1, hidden).bfloat16()
    with torch.inference_mode():
        got = fused.add_delta(x, torch.zeros_like(x))
    assert got.dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 and not p.requires_grad for p in fused.parameters())
