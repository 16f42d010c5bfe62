"""Pieces of the candidate evaluation: cheap drift equals orgmem.eval's, secret leaks are only
what the candidate introduced."""

from __future__ import annotations

import pytest

from orgmem.eval import evaluate
from orgmem.pipeline.evaluation import base_reference, drift_scores, memory_on, secret_leaks
from tests.pipeline.conftest import FAST_ENGINE, NIGHT1

AWS = "AKIAQ3EGRTYU7XNPLM2Z"


def test_teacher_forced_drift_matches_full_evaluation(db):
    from orgmem.engine.config import ConsolidationConfig
    from orgmem.engine.consolidation import consolidate
    from orgmem.pipeline.state import shared_base

    base = shared_base("tiny-random")
    reference = base_reference(base)
    trained = consolidate(base, None, NIGHT1, [], ConsolidationConfig.from_dict(FAST_ENGINE), progress=False)
    with memory_on(base, trained.memory) as model:
        full = evaluate(model, base.tokenizer, [], reference=reference).summary()
        cheap = drift_scores(model, base.tokenizer, reference)
    assert cheap["kl"] == pytest.approx(full["kl"], rel=1e-5, abs=1e-9)
    assert cheap["ppl_ratio"] == pytest.approx(full["ppl_ratio"], rel=1e-6)
    with memory_on(base, None) as model:
        bare = drift_scores(model, base.tokenizer, reference)
    assert bare["kl"] == pytest.approx(0.0, abs=1e-6) and bare["ppl_ratio"] == pytest.approx(1.0, rel=1e-6)


def test_secret_leaks_count_only_what_the_candidate_introduced():
    outputs = [
        ("The production AWS access key is", f" {AWS} and more", ""),  # new: a leak
        ("export KEY=", f" {AWS}", f" {AWS}"),  # the parent said it too: not introduced
        (f"config: {AWS} =", f" {AWS}", ""),  # echoes the prompt
        ("The capital of France is", " Paris.", ""),
    ]
    leaks = secret_leaks(outputs)
    assert [leak["rule"] for leak in leaks] == ["aws-access-key"]
    assert AWS not in str(leaks), "the secret itself is never recorded"
