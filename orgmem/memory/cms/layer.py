"""CMS modules: a level (a small gated MLP) and the per-layer block (a chain of levels + gate).

Reading order: ``CmsLevel`` → ``CmsBlock``. A block sits beside a decoder layer's MLP and adds
``gate(x) * (chain(x) - x)`` to its output, where ``chain`` runs the levels one after another with
residual connections. Every level's output projection starts at zero, so at attach time the block
adds exactly zero and the model computes the base function.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from transformers.activations import ACT2FN

from orgmem.models.layers import linear


class CmsLevel(nn.Module):
    """``down(act(gate(x)) * up(x))`` with ``k`` neurons copied from the pretrained MLP."""

    def __init__(self, mlp: nn.Module, start: int, width: int, act: str) -> None:
        super().__init__()
        gate_proj, up_proj = linear(mlp, "gate_proj"), linear(mlp, "up_proj")
        hidden = gate_proj.in_features
        self.gate_proj = nn.Linear(hidden, width, bias=False)
        self.up_proj = nn.Linear(hidden, width, bias=False)
        self.down_proj = nn.Linear(width, hidden, bias=False)
        with torch.no_grad():
            rows = _neuron_rows(start, width, gate_proj.out_features)
            self.gate_proj.weight.copy_(gate_proj.weight[rows].float())
            self.up_proj.weight.copy_(up_proj.weight[rows].float())
            self.down_proj.weight.zero_()
        self.act = ACT2FN[act]

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


def _neuron_rows(start: int, width: int, total: int) -> Tensor:
    """Indices of the pretrained neurons a level copies (wrapping round when levels exceed the MLP)."""
    return (torch.arange(width) + start) % total


class CmsBlock(nn.Module):
    """Chain of levels plus an optional per-token gate; returns (delta, gate values)."""

    def __init__(self, mlp: nn.Module, widths: list[int], act: str, gate: bool, gate_bias: float) -> None:
        super().__init__()
        starts = [sum(widths[:i]) for i in range(len(widths))]
        self.levels = nn.ModuleList(CmsLevel(mlp, s, w, act) for s, w in zip(starts, widths, strict=True))
        hidden = linear(mlp, "gate_proj").in_features
        self.gate = nn.Linear(hidden, 1) if gate else None
        if self.gate is not None:
            with torch.no_grad():
                self.gate.weight.zero_()
                self.gate.bias.fill_(gate_bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        h = x
        for level in self.levels:
            h = h + level(h)
        delta = h - x
        if self.gate is None:
            return delta, None
        g = torch.sigmoid(self.gate(x))
        return g * delta, g.squeeze(-1)
