"""Configuration of the LoRA baseline kind (via peft)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from orgmem.memory.config import MemoryConfig


@dataclass
class LoraMemoryConfig(MemoryConfig):
    """LoRA on the MLP projections of the wrapped layers: the baseline CMS is measured against."""

    kind: ClassVar[str] = "lora"

    r: int = field(default=16, metadata={"help": "LoRA rank."})
    alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    target_modules: list[str] = field(default_factory=lambda: ["gate_proj", "up_proj", "down_proj"],
                                      metadata={"help": "Module names inside each wrapped layer."})
    lr: float = field(default=1e-3, metadata={
        "help": "Learning rate (1e-3 learns, 3e-4 does not: docs/knowledge_tuning.md)."})

    def __post_init__(self) -> None:
        if self.r <= 0 or not self.target_modules:
            raise ValueError(f"lora config: r must be > 0 and target_modules non-empty: {self.r}, "
                             f"{self.target_modules}")
