"""What the engine tests train on: a first night of two chunks, a small three-level CMS, and a
budget that trains it in seconds on the tiny base."""

from __future__ import annotations

from typing import Any

from orgmem.engine.config import ConsolidationConfig
from orgmem.memory import CmsConfig

NIGHT1 = [
    "# Runbook: Heron\n\nHeron listens on port 7415. The cache lives in Redis database 3.\n",
    "# Ledgerfox\nINVOICE_DAY = 3\n# Payment terms in days.\nPAYMENT_TERMS_DAYS = 21\n",
]
CMS = CmsConfig(widths=[16, 8, 8], periods=[1, 2, 0], lrs=[1e-2, 1e-2, 1e-2])


def small_config(**overrides: Any) -> ConsolidationConfig:
    """Two epochs of 160-token steps on ``CMS``, one rehearsal item a step, one thread; ``overrides`` win."""
    defaults: dict[str, Any] = dict(memory=CMS, num_threads=1, epochs=2, tokens_per_step=160, max_seq_len=128,
                                    rehearsal_per_step=1)
    return ConsolidationConfig(**{**defaults, **overrides})
