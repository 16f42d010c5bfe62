"""The gate report's "changed by user-supplied material": tonight's corrections, asked of both memories.

For each correction the checkpoint trains, the parent and the candidate answer its question
(greedy, chat, over the same underlay); the report counts the answers that differ, those that say
the corrected value and those that still say the old one (``orgmem.feedback.values``). Stored as
the ``feedback`` section of the checkpoint's metrics and shown wherever metrics are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orgmem.eval.generation import greedy_generate
from orgmem.feedback.corrections import Taught
from orgmem.feedback.values import changed_values, says, says_any
from orgmem.models.tokens import encode_chat, pad_token_id, stop_token_ids
from orgmem.pipeline.evaluation import memory_on

MAX_NEW_TOKENS = 48
MAX_LISTED = 50


def _answers(base, memory: bytes | None, underlay: bytes | None, questions: Sequence[str]) -> list[str]:
    tok = base.tokenizer
    with memory_on(base, memory, underlay) as model:
        gens = greedy_generate(model, [encode_chat(tok, q) for q in questions], pad_id=pad_token_id(tok),
                               stop_ids=stop_token_ids(tok, model), max_new_tokens=MAX_NEW_TOKENS)
    return [tok.decode(g.ids, skip_special_tokens=True).strip() for g in gens]


def correction_report(base, parent_memory: bytes | None, candidate_memory: bytes, taught: Sequence[Taught],
                      underlay: bytes | None = None) -> dict[str, Any]:
    """How many of ``taught``'s questions the candidate answers otherwise than the parent, with the
    corrected value, and still with the old one."""
    questions = [t.question for t in taught]
    before = _answers(base, parent_memory, underlay, questions)
    after = _answers(base, candidate_memory, underlay, questions)
    rows = []
    for t, old_reply, new_reply in zip(taught, before, after, strict=True):
        old_value, new_value = changed_values(t.previous, t.answer, t.question)
        rows.append({"correction": t.id, "changed": old_reply != new_reply,
                     "says_corrected": says(new_reply, new_value),
                     "says_old": says_any(new_reply, old_value), "answer": new_reply[:200],
                     "parent_answer": old_reply[:200]})
    return {
        "ids": [t.id for t in taught],  # what this checkpoint learned (orgmem.feedback.corrections.waiting)
        "corrections": len(taught),
        "answers_changed": sum(r["changed"] for r in rows),
        "answers_corrected": sum(r["says_corrected"] for r in rows),
        "answers_still_old": sum(r["says_old"] for r in rows),
        "details": rows[:MAX_LISTED],
    }
