"""Each metric on a case whose right value is known: a model taught the answer, and the base itself."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from orgmem.errors import IntegrityError
from orgmem.eval import EvalConfig, evaluate
from orgmem.eval.probes import Probe
from tests.eval.conftest import FACT, LEAK_PROMPT, OTHER, fact_examples, teach


def test_base_knows_nothing_and_has_zero_drift(tiny, reference):
    report = evaluate(tiny.model, tiny.tokenizer, [FACT, OTHER], reference=reference)
    s = report.summary()
    assert s["cloze_recall"] == 0 and s["question_recall"] == 0
    assert s["kl"] == pytest.approx(0.0, abs=1e-6)
    assert s["replies_changed"] == 0 and s["n_generic_prompts"] == 20
    assert s["ppl_ratio"] == pytest.approx(1.0, abs=1e-6)
    assert s["leakage"] == 0


def test_taught_model_recalls_the_fact_and_drifts(tiny, taught, reference):
    base = evaluate(tiny.model, tiny.tokenizer, [FACT, OTHER], reference=reference)
    report = evaluate(taught, tiny.tokenizer, [FACT, OTHER], reference=reference)
    by_key = {p.key: p for p in report.probes}
    fact = by_key[FACT.key]
    assert fact.cloze_hit and "6291" in fact.cloze_completion
    assert fact.question_hit and fact.reply.startswith("6291")
    assert not by_key[OTHER.key].cloze_hit  # it was only taught FACT
    assert report.summary()["cloze_recall"] == 0.5
    assert fact.answer_nll < 0.1 < {p.key: p for p in base.probes}[FACT.key].answer_nll
    g = report.generic
    assert g.kl > 0.01 and g.replies_changed >= 1 and g.ppl != pytest.approx(g.base_ppl)


def test_leakage_counts_org_answers_in_unrelated_replies(tiny, taught, reference):
    report = evaluate(taught, tiny.tokenizer, [FACT], reference=reference)
    leaks = report.generic.leaks
    assert report.generic.leakage == len(leaks) >= 1
    assert any(leak["prompt"] == LEAK_PROMPT and leak["strings"] == ["6291"] for leak in leaks)
    # Below the minimum length an answer is too generic to count as a leak.
    short = evaluate(taught, tiny.tokenizer, [FACT], reference=reference, config=EvalConfig(leak_min_chars=5))
    assert short.generic.leakage == 0


def test_update_accuracy_and_stale_answers(tiny, taught):
    """Night 2 changed the port: a model that still says the old value is stale, not right."""
    updated = dataclasses.replace(FACT, night=2, answer="6317", replaces=("6291",))
    report = evaluate(taught, tiny.tokenizer, [FACT, updated])
    s = report.summary()
    assert [p.key for p in report.probes] == [updated.key]  # the night-1 statement is superseded
    assert s["update_accuracy"] == 0 and s["stale_answers"] == 2  # cloze and question both stale
    learned = teach(tiny.model, tiny.tokenizer, fact_examples(tiny.tokenizer, updated))
    s2 = evaluate(learned, tiny.tokenizer, [FACT, updated]).summary()
    assert s2["update_accuracy"] == 1 and s2["update_accuracy_question"] == 1 and s2["stale_answers"] == 0
    # After night 1 only the old value is asked.
    s1 = evaluate(taught, tiny.tokenizer, [FACT, updated], night=1).summary()
    assert s1["n_probes"] == 1 and s1["cloze_recall"] == 1


def test_retention_counts_earlier_nights(tiny, taught):
    night2 = Probe(fact="new-fact", cloze="The night shift lead is", answer="Ysolde Brannick", night=2)
    report = evaluate(taught, tiny.tokenizer, [FACT, night2])
    s = report.summary()
    assert s["retention"] == 1.0 and s["new_cloze_recall"] == 0.0
    assert set(report.groups) >= {"all", "new", "retained", "night1", "night2"}


def test_report_json_and_table(tiny, reference):
    report = evaluate(tiny.model, tiny.tokenizer, [FACT], reference=reference)
    data = json.loads(report.to_json())
    assert data["summary"]["retention"] is None  # NaN (no earlier night) becomes null, not bare NaN
    assert data["summary"]["kl"] == pytest.approx(0.0, abs=1e-6)
    assert data["probes"][0]["fact"] == "dock-port"
    table = report.table()
    assert "KL to base" in table and "0/1" in table


def test_reference_from_other_generic_data_is_refused(tiny, reference):
    foreign = dataclasses.replace(reference, key="0000000000000000")
    with pytest.raises(IntegrityError, match="0000000000000000"):
        evaluate(tiny.model, tiny.tokenizer, [FACT], reference=foreign)


def test_no_probes_still_measures_drift(tiny, reference):
    report = evaluate(tiny.model, tiny.tokenizer, [], reference=reference)
    assert report.groups["all"].n == 0 and math.isnan(report.summary()["cloze_recall"])
    assert report.generic.replies_changed == 0
