"""Configuration of the CMS (continuum memory system) kind."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from orgmem.memory.config import MemoryConfig


@dataclass
class CmsConfig(MemoryConfig):
    """A chain of MLP levels per wrapped layer, each level with its own update period.

    Neurons are copied from the pretrained MLP with a zero-init output projection and a per-token
    gate sigma(w.x + b) with a sparsity penalty on its mean (``docs/knowledge_tuning.md``). Defaults
    measured on SmolLM2 with the engine's ~30-step nights (the first CPU runs used b = -3, lr 3e-3
    and 80 full-batch steps): b = -3 learned too slowly (cloze 2/30), b = -1 with a fast lr of 1e-2
    reached cloze 10/30 at KL 0.005; the fast level at 3e-2, or slow levels at the fast lr, diverged (a slow
    level's accumulated step lands on top of what the fast level already learned).
    """

    kind: ClassVar[str] = "cms"

    widths: list[int] = field(default_factory=lambda: [128, 32, 32], metadata={
        "help": "Neurons per level (fastest first); copied from the pretrained MLP's neurons. The fast "
                "level is 128 wide: more capacity per step, within the 2% checkpoint budget."})
    periods: list[int] = field(default_factory=lambda: [1, 4, 16], metadata={
        "help": "Update period of each level in optimizer steps (counted across nights); 0 = once at the "
                "end of each consolidation. Measured: a once-per-night AdamW step is a blind sign-like "
                "move of every weight that no later step corrects (SmolLM2: KL 0.01 -> 1.15)."})
    lrs: list[float] = field(default_factory=lambda: [1e-2, 1e-4, 3e-5], metadata={
        "help": "Learning rate of each level (slow levels gentler: their steps are not corrected; at "
                "1e-3 / 3e-4 each of their boundaries spiked the rehearsal KL to 0.2-0.6 and night 2 "
                "ended at KL 0.27, so they are now 1e-4 / 3e-5)."})
    gate: bool = field(default=True, metadata={
        "help": "Per-token gate sigma(w.x + b) on the block's output (opens on memory-relevant tokens)."})
    gate_bias: float = field(default=-1.0, metadata={"help": "Initial gate bias (sigma(-1) = 0.27)."})
    gate_lr: float = field(default=1e-2, metadata={"help": "Learning rate of the gate."})
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
