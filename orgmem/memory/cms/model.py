"""The ``cms`` memory kind: a ``CmsBlock`` beside the MLP of each wrapped decoder layer.

Attaching registers a forward hook on each wrapped layer's ``mlp`` that adds the block's gated
output; the base modules are never replaced, so ``detach`` (removing the hooks) restores the base
exactly. Levels form parameter groups ``level0..N`` with their own period and lr: fast levels
learn tonight's material, the slowest (once per consolidation) carries knowledge across nights.
"""

from __future__ import annotations

from typing import cast

from torch import Tensor, nn

from orgmem.memory.cms.config import CmsConfig
from orgmem.memory.cms.layer import CmsBlock
from orgmem.memory.interface import MemoryKind, ParamGroup, masked_mean
from orgmem.models.layers import decoder_layers, model_device, submodule


class CmsMemory(MemoryKind):
    """CMS blocks on the chosen layers of a frozen Llama-family base."""

    config: CmsConfig

    def __init__(self, base, config: CmsConfig, layers: list[int]) -> None:
        super().__init__(base, config, layers)
        model = base.model
        act = getattr(model.config, "hidden_act", "silu")
        decoder = decoder_layers(model)
        self.blocks = nn.ModuleDict({
            str(i): CmsBlock(submodule(decoder[i], "mlp"), config.widths, act, config.gate, config.gate_bias)
            for i in layers
        })
        self.to(model_device(model))
        self._hooks: list = []
        self._gates: dict[str, Tensor] = {}

    def attach(self) -> None:
        decoder = decoder_layers(self.base_model.model)
        for i in self.layers:
            self._hooks.append(submodule(decoder[i], "mlp").register_forward_hook(self._hook(str(i))))

    def detach(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks.clear()
        self._gates.clear()

    def _hook(self, key: str):
        block = self.blocks[key]

        def hook(module: nn.Module, args: tuple, output: Tensor) -> Tensor:
            if not self.enabled:
                return output
            x = args[0]
            delta, gate = block(x.float())
            if gate is not None:
                self._gates[key] = gate
            return output + delta.to(output.dtype)

        return hook

    def _blocks(self) -> list[CmsBlock]:
        return [cast(CmsBlock, b) for b in self.blocks.values()]

    def param_groups(self) -> list[ParamGroup]:
        groups = []
        for j, (period, lr) in enumerate(zip(self.config.periods, self.config.lrs, strict=True)):
            params = [p for b in self._blocks() for p in b.levels[j].parameters()]
            groups.append(ParamGroup(f"level{j}", params, lr, period))
        if self.config.gate:
            params = [p for b in self._blocks() if b.gate is not None for p in b.gate.parameters()]
            groups.append(ParamGroup("gate", params, self.config.gate_lr, 1))
        return groups

    def gate_mean(self, token_mask: Tensor | None = None) -> Tensor | None:
        """Mean gate over wrapped layers and masked tokens of the last forward."""
        if not self._gates:
            return None
        per_layer = [masked_mean(g, token_mask) for g in self._gates.values()]
        return cast(Tensor, sum(per_layer)) / len(per_layer)

    def aux_losses(self, token_mask: Tensor | None = None) -> dict[str, Tensor]:
        mean = self.gate_mean(token_mask)
        if mean is None or self.config.sparsity == 0:
            return {}
        return {"gate_sparsity": self.config.sparsity * mean}
