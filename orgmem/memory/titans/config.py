"""Configuration of the Titans memory kind."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from orgmem.memory.config import MemoryConfig

# Fields a meta-trained initialisation was trained for (weight shapes and the inner-loop rule):
# a stored initialisation is only used with the same values.
ARCHITECTURE_FIELDS = ("layers", "heads", "dim_head", "depth", "expansion", "chunk_size", "max_lr",
                       "conv_kernel", "key_shift", "max_grad_norm")


@dataclass
class TitansConfig(MemoryConfig):
    """A neural long-term memory beside chosen decoder layers (default: one layer at 3/4 depth).

    The memory MLP's weights are the org's state, written by the forward pass during consolidation;
    projections, rates and gates are meta-parameters learned once per base (``orgmem memory
    meta-train``) and frozen afterwards.
    """

    kind: ClassVar[str] = "titans"

    heads: int = field(default=4, metadata={"help": "Independent memory heads."})
    dim_head: int = field(default=64, metadata={"help": "Key/value width of each head."})
    depth: int = field(default=2, metadata={"help": "Layers of the memory MLP (>= 2: a deep memory)."})
    expansion: int = field(default=4, metadata={"help": "Hidden width of the memory MLP / dim_head."})
    chunk_size: int = field(default=16, metadata={
        "help": "Tokens per write: one gradient step per chunk (gradients at the chunk-start weights)."})
    max_lr: float = field(default=0.5, metadata={
        "help": "Upper bound of the data-dependent write rate theta (< 1 with unit keys: no divergence)."})
    conv_kernel: int = field(default=4, metadata={"help": "Causal conv over keys/values (1 = none)."})
    key_shift: bool = field(default=True, metadata={
        "help": "Key of token t from token t-1: the memory stores 'context -> what came next'."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Clip of each chunk's write gradient."})
    gate_bias: float = field(default=-3.0, metadata={"help": "Initial bias of the per-token read gate."})
    meta_init: str = field(default="auto", metadata={
        "help": "'auto' (load the base's meta-trained init when present), 'none', 'required', or a path."})
    seed: int = field(default=0, metadata={"help": "Seed of the untrained initialisation."})

    def __post_init__(self) -> None:
        if self.depth < 2:
            raise ValueError(f"titans config: depth must be >= 2 (a deep memory), got {self.depth}")
        if not 0 < self.max_lr < 1:
            raise ValueError(f"titans config: max_lr must be in (0, 1), got {self.max_lr}")
        if min(self.heads, self.dim_head, self.expansion, self.chunk_size, self.conv_kernel) < 1:
            raise ValueError("titans config: heads, dim_head, expansion, chunk_size and conv_kernel "
                             "must be >= 1")

    def resolve_layers(self, num_layers: int) -> list[int]:
        """Default: one layer around 3/4 depth (layer 22 of SmolLM2's 30, as in docs/knowledge_tuning.md)."""
        if self.layers is None:
            return [min(num_layers - 1, (3 * num_layers) // 4)]
        return super().resolve_layers(num_layers)

    def memory_kwargs(self) -> dict[str, Any]:
        """Keyword options of ``NeuralMemory``."""
        names = ("heads", "dim_head", "depth", "expansion", "chunk_size", "max_lr", "conv_kernel",
                 "key_shift", "max_grad_norm", "gate_bias", "seed")
        return {n: getattr(self, n) for n in names}

    def architecture(self) -> dict[str, Any]:
        """The fields a stored meta-initialisation must match."""
        return {n: getattr(self, n) for n in ARCHITECTURE_FIELDS}
