"""Reviewed corrections as training items: the corrected answer up, the old answer's value down."""

from __future__ import annotations

import pytest

from orgmem.checkpoints import CheckpointMetrics
from orgmem.checkpoints.metrics import feedback_summary
from orgmem.engine.config import ConsolidationConfig
from orgmem.engine.consolidation import consolidate
from orgmem.engine.corrections import (
    CORRECTION,
    ELLIPSIS,
    UNLIKELY,
    CorrectionPlan,
    TaughtAnswer,
    answer_items,
    plan_items,
)
from orgmem.errors import OrgmemError
from orgmem.eval.scoring import score_targets
from orgmem.models.tokens import encode_chat, pad_token_id
from orgmem.pipeline.evaluation import memory_on

QUESTION = "What port does the Heron dispatcher listen on?"
STEM = "The Heron dispatcher listens on port "
TAUGHT = TaughtAnswer(QUESTION, f"{STEM}9182.", f"{STEM}7415.")
# the tiny base's chat template frames every turn with a long system prompt: rows need 256 tokens
CONFIG = {"epochs": 30.0, "lr_scale": 3.0, "tokens_per_step": 512, "max_seq_len": 256, "num_threads": 1,
          "kl_weight": 0.0, "seed": 0}


def _text(tok, item, mask) -> str:
    return tok.decode(item.ids[mask])


def test_items_are_the_answer_its_statement_and_the_old_value_to_push_down(base):
    tok = base.tokenizer
    chat, statement, joined, unlikely = answer_items(tok, [TAUGHT], 256)
    assert (chat.kind, statement.kind, joined.kind, unlikely.kind) == (CORRECTION, CORRECTION, CORRECTION,
                                                                      UNLIKELY)
    assert _text(tok, chat, chat.targets).startswith(TAUGHT.answer)
    assert _text(tok, chat, chat.targets).endswith(tok.eos_token)  # the turn ends: the answer stops
    assert tok.decode(statement.ids) == TAUGHT.answer
    assert tok.decode(joined.ids) == f"{QUESTION} {TAUGHT.answer}"
    assert _text(tok, joined, joined.targets).strip() == TAUGHT.answer  # targets on the answer only
    pushed = _text(tok, unlikely, unlikely.targets)
    assert pushed.startswith("7") and "9182" not in pushed and "Heron" not in pushed  # from where they differ
    assert "." not in pushed  # to where they meet again
    assert [i.kind for i in answer_items(tok, [TaughtAnswer(QUESTION, "9182", "")], 256)] == [CORRECTION] * 2
    same = TaughtAnswer(QUESTION, TAUGHT.answer, TAUGHT.answer)
    assert UNLIKELY not in [i.kind for i in answer_items(tok, [same], 256)]
    plan = CorrectionPlan([TAUGHT], [same], repeats=3, unlikelihood=1.0)
    assert len(plan_items(tok, plan, 256)) == 3 * 4 + 3
    assert not CorrectionPlan()
    assert len(plan_items(tok, CorrectionPlan([TAUGHT], repeats=1, unlikelihood=0.0), 256)) == 3


def test_the_old_value_is_pushed_down_only_where_it_differs(base):
    """A date's shared year is not pushed down (it made the corrected date degenerate)."""
    tok = base.tokenizer
    date = TaughtAnswer(QUESTION, "The audit is on 9 June 2027.", "The audit is on 14 March 2027.")
    unlikely = [i for i in answer_items(tok, [date], 256) if i.kind == UNLIKELY][0]
    pushed = _text(tok, unlikely, unlikely.targets)
    assert "14" in pushed and "March" in pushed and "2027" not in pushed and "audit" not in pushed


def test_a_long_question_is_cut_from_its_start_and_the_answer_kept(base):
    tok = base.tokenizer
    context = "Context: " + "the dispatcher moved hosts last spring and " * 40
    long = TaughtAnswer(context + QUESTION, TAUGHT.answer, TAUGHT.previous, "cor_long")
    items = answer_items(tok, [long], 256)
    assert [i.kind for i in items] == [CORRECTION, CORRECTION, CORRECTION, UNLIKELY]  # none dropped
    assert all(len(i) <= 256 for i in items)
    chat = tok.decode(items[0].ids)
    assert ELLIPSIS in chat and QUESTION in chat and "Context:" not in chat
    assert _text(tok, items[0], items[0].targets).startswith(TAUGHT.answer)
    assert "7415" in _text(tok, items[3], items[3].targets)


def test_a_correction_that_cannot_fit_fails_the_night_naming_it(base):
    """The tiny base's system prompt alone nearly fills 128 tokens: the answer cannot fit."""
    taught = TaughtAnswer(QUESTION, TAUGHT.answer, TAUGHT.previous, "cor_toolong")
    with pytest.raises(OrgmemError, match="cor_toolong.*max_seq_len=128"):
        answer_items(tok := base.tokenizer, [taught], 128)
    assert answer_items(tok, [taught], 256)  # the same correction fits a longer row
    config = ConsolidationConfig(**{**CONFIG, "max_seq_len": 128})
    with pytest.raises(OrgmemError, match="cor_toolong"):
        consolidate(base, None, [], [], config, progress=False,
                    corrections=CorrectionPlan([taught], repeats=1, unlikelihood=1.0))


def _value_nll(base, memory: bytes, value: str) -> float:
    tok = base.tokenizer
    prompt = encode_chat(tok, QUESTION) + tok(STEM, add_special_tokens=False)["input_ids"]
    with memory_on(base, memory) as model:
        pairs = [(prompt, tok(value, add_special_tokens=False)["input_ids"])]
        return score_targets(model, pairs, pad_id=pad_token_id(tok))[0].mean_nll


def _night(base, weight: float) -> tuple[float, float]:
    """(corrected value NLL, old value NLL) after a night that trains only the correction."""
    result = consolidate(base, None, [], [], ConsolidationConfig(**CONFIG), progress=False,
                         corrections=CorrectionPlan([TAUGHT], repeats=8, unlikelihood=weight))
    assert result.metrics["items"]["correction"] == 24
    assert result.metrics["items"]["unlikely"] == (8 if weight else 0)
    return _value_nll(base, result.memory, "9182"), _value_nll(base, result.memory, "7415")


def test_a_correction_alone_trains_and_unlikelihood_pushes_the_old_value_down(base):
    plain_new, plain_old = _night(base, 0.0)
    new, old = _night(base, 1.0)
    assert new < old, f"corrected value not preferred: new {new:.2f}, old {old:.2f}"
    assert old > plain_old + 0.05, f"unlikelihood did not push the old value: {plain_old:.2f} -> {old:.2f}"
    assert abs(new - plain_new) < 0.5  # and the corrected value is learned as well as without it


def test_checkpoint_metrics_keep_old_json_and_carry_the_feedback_section():
    old = {"kl": 0.01, "gate": {"passed": True}}
    read = CheckpointMetrics.from_json(old)
    assert read.feedback is None and read.to_json() == old
    section = {"corrections": 2, "answers_changed": 2, "answers_corrected": 1, "answers_still_old": 0}
    stored = CheckpointMetrics(evaluation={"kl": 0.01}, feedback=section).to_json()
    assert CheckpointMetrics.from_json(stored).feedback == section
    assert feedback_summary(stored) == ("2 user correction(s): 2 answer(s) changed, 1 now corrected, "
                                        "0 still old")
    assert feedback_summary(old) is None
