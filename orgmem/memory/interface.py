"""The small interface every memory kind implements, and ``ParamGroup``.

A kind is an ``nn.Module`` holding only memory weights. ``attach()`` makes the base model use them
(forward hooks or adapter injection), ``detach()`` restores the exact base. Kinds stay unaware of
training loops: they declare parameter groups with an update ``period`` and the trainer
(``orgmem.engine``) accumulates each group's gradient over its period and steps it at the boundary;
this is how CMS levels update at different frequencies without kind-specific trainer code.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass

from torch import Tensor, nn

from orgmem.memory.config import MemoryConfig

PERIOD_CONSOLIDATION = 0
"""Special period: the group accumulates over a whole consolidation and steps once at its end."""


@dataclass
class ParamGroup:
    """Parameters updated together: learning rate and update period in optimizer steps."""

    name: str
    params: list[nn.Parameter]
    lr: float
    period: int = 1
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        if self.period < 0:
            raise ValueError(f"param group {self.name!r}: period must be >= 0, got {self.period}")


class MemoryKind(nn.Module, ABC):
    """One memory component attached to a frozen base (peer of cms, lora, titans)."""

    config_cls: type[MemoryConfig] = MemoryConfig

    def __init__(self, base, config: MemoryConfig, layers: list[int]) -> None:
        super().__init__()
        self.base = [base]  # a list hides the base from nn.Module registration (never saved)
        self.config = dataclasses.replace(config, layers=list(layers))  # saved configs are explicit
        self.layers = list(layers)
        self.enabled = True

    @property
    def base_model(self):
        return self.base[0]

    @abstractmethod
    def attach(self) -> None:
        """Make the base model's forward use this memory."""

    @abstractmethod
    def detach(self) -> None:
        """Undo ``attach``: the base computes exactly its own function again."""

    @abstractmethod
    def param_groups(self) -> list[ParamGroup]:
        """Trainable parameters with their lr and update period."""

    def set_enabled(self, enabled: bool) -> None:
        """While disabled the model computes the base function (used for KL references)."""
        self.enabled = enabled

    def memory_state_dict(self) -> dict[str, Tensor]:
        """Memory weights only (what serving needs)."""
        return {k: v.detach().clone() for k, v in self.state_dict().items()}

    def load_memory_state_dict(self, state: dict[str, Tensor]) -> None:
        self.load_state_dict(state, strict=True)

    def set_segments(self, segments: Tensor | None) -> None:
        """Called by the engine before a packed forward: ``segments`` (rows, L) tells the items
        sharing a row apart (negative = padding); None after it. Kinds whose state flows along
        the sequence (Titans) must not carry it across segments; per-token kinds ignore it."""

    def aux_losses(self, token_mask: Tensor | None = None) -> dict[str, Tensor]:
        """Extra training terms from the last forward (e.g. gate sparsity), already weighted."""
        return {}

    def train_state_dict(self) -> dict[str, Tensor]:
        """Kind-specific state the next consolidation needs besides optimizer moments."""
        return {}

    def load_train_state_dict(self, state: dict[str, Tensor]) -> None:
        if state:
            raise ValueError(f"{self.config.kind} memory has no train state, got keys {sorted(state)[:5]}")

    def num_trainable(self) -> int:
        return sum(p.numel() for g in self.param_groups() for p in g.params)


def masked_mean(values: Tensor, token_mask: Tensor | None) -> Tensor:
    """Mean of ``values`` (b, t) over tokens where ``token_mask`` is true (all when None)."""
    if token_mask is None:
        return values.mean()
    mask = token_mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)

