"""The gate's verdict on one candidate checkpoint, from the pipeline's metrics and the thresholds.

Pure functions (no database), so the verdict can be computed before the checkpoint is committed
and stored with it. A metric that could not be measured (``None``: e.g. retention on the first
night, when there is no earlier material) is reported as skipped, not failed. A metric that was
measured but is NaN or infinite fails its check: that is what a diverged candidate (a far too high
learning rate) measures, and skipping it would promote a model whose outputs are NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from orgmem.gate.config import GateConfig


@dataclass(frozen=True)
class Check:
    name: str
    metric: str
    value: float | None
    threshold: float | None
    passed: bool
    skipped: bool
    message: str


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    checks: list[Check] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        """One sentence per failed check (what the rejection says)."""
        return [c.message for c in self.checks if not c.passed]

    def summary(self) -> str:
        if self.passed:
            return "passed: " + "; ".join(c.message for c in self.checks if not c.skipped)
        return "rejected: " + "; ".join(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reasons": self.reasons, "checks": [asdict(c) for c in self.checks]}


# (check name, metric key, threshold field, comparison "min" | "max", what it guards)
_RULES: list[tuple[str, str, str, str, str]] = [
    ("learned", "new_nll_improvement", "min_new_nll_improvement", "min", "new-material NLL improvement"),
    (
        "retained",
        "retention_nll_increase",
        "max_retention_nll_increase",
        "max",
        "earlier-material NLL increase",
    ),
    ("kl", "kl", "max_kl", "max", "KL to base on generic prompts"),
    ("ppl", "ppl_ratio", "max_ppl_ratio", "max", "generic perplexity ratio to base"),
    ("leakage", "leakage", "max_leakage", "max", "generic replies leaking org strings"),
    ("secrets", "secret_leaks", "max_secret_leaks", "max", "secret-shaped strings emitted"),
]
_COMPARE: dict[str, Callable[[float, float], bool]] = {"min": lambda v, t: v >= t, "max": lambda v, t: v <= t}


def _number(value: Any) -> float | None:
    """The metric as a float (NaN and inf kept), None when it was not measured."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _check(rule: tuple[str, str, str, str, str], metrics: Mapping[str, Any], config: GateConfig) -> Check:
    name, metric, threshold_field, how, what = rule
    threshold = getattr(config, threshold_field)
    value = _number(metrics.get(metric))
    finite = value if value is None or math.isfinite(value) else None  # what JSON can store
    if threshold is None:
        return Check(name, metric, finite, None, True, True, f"{what}: check disabled")
    if value is None:
        return Check(name, metric, None, threshold, True, True, f"{what}: not measured, skipped")
    if finite is None:
        return Check(
            name, metric, None, threshold, False, False, f"{what} is {value} (outputs not finite): FAILED"
        )
    passed = _COMPARE[how](value, threshold)
    bound = ">=" if how == "min" else "<="
    verdict = "ok" if passed else "FAILED"
    return Check(
        name,
        metric,
        value,
        threshold,
        passed,
        False,
        f"{what} {value:.4g} (needs {bound} {threshold:g}): {verdict}",
    )


def decide(metrics: Mapping[str, Any], config: GateConfig | None = None) -> GateDecision:
    """Apply every enabled threshold to ``metrics`` (keys as produced by ``orgmem.pipeline``)."""
    config = config or GateConfig()
    checks = [_check(rule, metrics, config) for rule in _RULES]
    return GateDecision(passed=all(c.passed for c in checks), checks=checks)
