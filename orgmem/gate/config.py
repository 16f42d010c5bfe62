"""Gate thresholds: shipped defaults, overridden per org by ``orgs.gate_config``.

Each threshold guards one promise of a nightly checkpoint (see ``decide``): it learned tonight's
material, kept what earlier nights taught, did not drift from the base's general behaviour, and
does not emit secrets. ``None`` disables a check. Values are in the units ``orgmem.pipeline``
measures: answer NLL in nats per token, KL in nats, perplexity as a ratio to the base.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from orgmem.errors import OrgmemError


@dataclass(frozen=True)
class GateConfig:
    """Promotion thresholds. Defaults suit the shipped engine recipe (KL-controlled CMS memory)."""

    min_new_nll_improvement: float | None = field(
        default=0.0,
        metadata={
            "help": "New-material answer NLL must drop by at least this (nats/token) versus the parent."
        },
    )
    max_retention_nll_increase: float | None = field(
        default=0.25,
        metadata={
            "help": "Earlier material's answer NLL may rise by at most this (nats/token) versus the parent."
        },
    )
    max_kl: float | None = field(
        default=0.05, metadata={"help": "Mean KL(base || candidate) on the shipped generic prompts, in nats."}
    )
    max_ppl_ratio: float | None = field(
        default=1.05, metadata={"help": "Generic-text perplexity may be at most this multiple of the base's."}
    )
    max_leakage: int | None = field(
        default=None,
        metadata={
            "help": "Generic replies that mention org-specific strings (off by default: noisy on small sets)."
        },
    )
    max_secret_leaks: int | None = field(
        default=0, metadata={"help": "Secret-shaped strings the candidate emits that its parent did not."}
    )

    @classmethod
    def from_org(cls, gate_config: dict[str, Any] | None) -> GateConfig:
        """Defaults overridden by an org's ``gate_config``; unknown keys and bad values are named."""
        overrides = dict(gate_config or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise OrgmemError(f"gate_config has unknown threshold(s) {unknown}; known: {sorted(names)}")
        for name, value in overrides.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise OrgmemError(f"gate_config threshold {name!r} must be a number or null, got {value!r}")
        return cls(**overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
