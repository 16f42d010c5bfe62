"""The gate's verdict from metrics and thresholds (pure: no database, no model)."""

from __future__ import annotations

import pytest

from orgmem.errors import OrgmemError
from orgmem.gate import GateConfig, decide

GOOD = {
    "new_nll_improvement": 0.4,
    "retention_nll_increase": 0.01,
    "kl": 0.002,
    "ppl_ratio": 1.01,
    "leakage": 3,
    "secret_leaks": 0,
}


def test_good_candidate_passes_with_leakage_check_off_by_default():
    decision = decide(GOOD)
    assert decision.passed and decision.reasons == []
    assert {c.name: c.skipped for c in decision.checks}["leakage"] is True


@pytest.mark.parametrize(
    ("metric", "value", "reason"),
    [
        ("new_nll_improvement", -0.1, "new-material NLL improvement -0.1 (needs >= 0)"),
        ("retention_nll_increase", 0.9, "earlier-material NLL increase 0.9 (needs <= 0.25)"),
        ("kl", 0.3, "KL to base on generic prompts 0.3 (needs <= 0.05)"),
        ("ppl_ratio", 1.2, "generic perplexity ratio to base 1.2 (needs <= 1.05)"),
        ("secret_leaks", 1, "secret-shaped strings emitted 1 (needs <= 0)"),
    ],
)
def test_each_threshold_rejects_with_a_named_reason(metric, value, reason):
    decision = decide({**GOOD, metric: value})
    assert not decision.passed
    assert decision.reasons == [f"{reason}: FAILED"]
    assert decision.summary().startswith("rejected: ")


def test_unmeasured_metrics_are_skipped_not_failed():
    decision = decide({**GOOD, "retention_nll_increase": None, "kl": None})
    assert decision.passed
    skipped = {c.name for c in decision.checks if c.skipped}
    assert {"retained", "kl"} <= skipped


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_metrics_fail_instead_of_being_skipped(value):
    """A diverged candidate measures NaN: that is a failure, and the stored check is JSON-safe."""
    decision = decide({**GOOD, "kl": value, "ppl_ratio": value})
    assert not decision.passed
    assert decision.reasons == [
        f"KL to base on generic prompts is {value} (outputs not finite): FAILED",
        f"generic perplexity ratio to base is {value} (outputs not finite): FAILED",
    ]
    failed = [c for c in decision.checks if not c.passed]
    assert all(c.value is None and not c.skipped for c in failed)
    off = decide({**GOOD, "kl": value}, GateConfig.from_org({"max_kl": None}))
    assert off.passed and {c.name: c.value for c in off.checks}["kl"] is None


def test_org_overrides_and_validation():
    strict = GateConfig.from_org({"max_kl": 0.001, "max_leakage": 0})
    decision = decide(GOOD, strict)
    assert not decision.passed and len(decision.reasons) == 2
    assert GateConfig.from_org({"max_kl": None}).max_kl is None
    with pytest.raises(OrgmemError, match=r"unknown threshold\(s\) \['max_klx'\]"):
        GateConfig.from_org({"max_klx": 1})
    with pytest.raises(OrgmemError, match="'max_kl' must be a number or null, got 'high'"):
        GateConfig.from_org({"max_kl": "high"})
