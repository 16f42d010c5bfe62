"""A CMS block for serving: the same function as ``CmsBlock`` with fewer, larger matmuls.

Why: decoding one token runs each wrapped layer's block on a single row, where every kernel
launch costs more than its arithmetic. ``CmsBlock`` runs 3 linears per level plus the gate
(10 per layer with the default 3 levels, ~50 torch ops); here each level's gate and up
projections are one matmul, and the first level's also carries the block's gate row, since all
three read the layer input (6 matmuls, ~25 ops). Each output element is the same dot product,
so the result matches ``CmsBlock`` (a test compares them). Weights stay fp32, as trained.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from orgmem.memory.cms.layer import CmsBlock, CmsLevel


class FusedCmsBlock(nn.Module):
    """Frozen copy of one ``CmsBlock``; ``add_delta(x, out)`` returns ``out + gate(x) * (chain(x) - x)``."""

    def __init__(self, block: CmsBlock) -> None:
        super().__init__()
        levels = [cast(CmsLevel, lv) for lv in block.levels]
        self.widths = [lv.gate_proj.out_features for lv in levels]
        self.acts = [lv.act for lv in levels]
        self.gated = block.gate is not None
        first = [levels[0].gate_proj.weight, levels[0].up_proj.weight]
        first_bias = None
        if block.gate is not None:
            first.append(block.gate.weight)
            first_bias = torch.cat([first[0].new_zeros(2 * self.widths[0]), block.gate.bias])
        self.first = _frozen(torch.cat(first))
        self.first_bias = _frozen(first_bias) if first_bias is not None else None
        self.gate_up = nn.ParameterList(
            _frozen(torch.cat([lv.gate_proj.weight, lv.up_proj.weight])) for lv in levels[1:])
        self.down = nn.ParameterList(_frozen(lv.down_proj.weight.clone()) for lv in levels)

    def add_delta(self, x: Tensor, out: Tensor) -> Tensor:
        xf = x.float()
        first = F.linear(xf, self.first, self.first_bias)
        h = xf
        for j, (width, act) in enumerate(zip(self.widths, self.acts, strict=True)):
            gu = first if j == 0 else F.linear(h, self.gate_up[j - 1])
            h = h + F.linear(act(gu[..., :width]) * gu[..., width:2 * width], self.down[j])
        delta = h - xf
        if self.gated:
            delta = torch.sigmoid(first[..., -1:]) * delta
        return out + delta.to(out.dtype)


def _frozen(t: Tensor) -> nn.Parameter:
    return nn.Parameter(t.detach().float().contiguous(), requires_grad=False)
