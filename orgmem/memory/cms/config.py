"""Configuration of the CMS (continuum memory system) kind."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from orgmem.memory.config import MemoryConfig


@dataclass
class CmsConfig(MemoryConfig):
    """A chain of MLP levels per wrapped layer, each level with its own update period.

    Defaults follow ML_NOTES: neurons copied from the pretrained MLP, zero-init output projection,
    lr 3e-3, a per-token gate sigma(w.x + b) with b = -3 and a sparsity penalty on its mean.
    """

    kind: ClassVar[str] = "cms"

    widths: list[int] = field(default_factory=lambda: [64, 32, 32], metadata={
        "help": "Neurons per level (fastest first); copied from the pretrained MLP's neurons."})
    periods: list[int] = field(default_factory=lambda: [1, 4, 16], metadata={
        "help": "Update period of each level in optimizer steps (counted across nights); 0 = once at the "
                "end of each consolidation. Measured: a once-per-night AdamW step is a blind sign-like "
                "move of every weight that no later step corrects (SmolLM2: KL 0.01 -> 1.15)."})
    lrs: list[float] = field(default_factory=lambda: [3e-3, 3e-3, 3e-3], metadata={
        "help": "Learning rate of each level."})
    gate: bool = field(default=True, metadata={
        "help": "Per-token gate sigma(w.x + b) on the block's output (opens on memory-relevant tokens)."})
    gate_bias: float = field(default=-3.0, metadata={"help": "Initial gate bias (sigma(-3) = 0.047)."})
    gate_lr: float = field(default=3e-3, metadata={"help": "Learning rate of the gate."})
    sparsity: float = field(default=0.1, metadata={
        "help": "Weight of the mean-gate penalty that keeps the gate shut on generic text."})

    def __post_init__(self) -> None:
        n = len(self.widths)
        if n < 2 or len(self.periods) != n or len(self.lrs) != n:
            raise ValueError(
                f"cms config: need >= 2 levels with one width, period and lr each; got widths "
                f"{self.widths}, periods {self.periods}, lrs {self.lrs}"
            )
        if any(w <= 0 for w in self.widths) or any(p < 0 for p in self.periods):
            raise ValueError(
                f"cms config: widths must be > 0 and periods >= 0: {self.widths}, {self.periods}")
