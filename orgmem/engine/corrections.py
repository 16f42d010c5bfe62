"""Training items of reviewed corrections: the corrected answer up, the model's old answer down.

An approved correction is a question, the answer it should get, and the answer the model gave. It
trains as (1) a chat turn question → corrected answer, (2) the corrected answer as a statement
when it is a sentence, both ``repeats`` times per pass so they outweigh the older statements of
the same fact that documents and replay still carry, and (3) an *unlikelihood* turn: the question
→ the old answer, whose tokens from the first one that differs from the corrected answer get the
loss -log(1 - p), so the old value stops being the greedy answer instead of merely sharing the
mass with the new one. Only the old answer's *differing span* is pushed down (tokens shared with the
corrected answer at either end, e.g. the year of a date or the closing period, are not: pushing
them down after the old prefix taught "not 2027" and the corrected date degenerated). A fourth
form, the question and the answer as one plain text, teaches the value without the chat template.
A turn longer than ``max_seq_len`` keeps its answer and loses the start of its question; one whose
answer alone does not fit fails the night (:class:`OrgmemError` naming the correction), since a
silently dropped correction would be marked learned. Forms come from the records' structure,
never from a benchmark's phrasing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from orgmem.engine.items import Item, _encode, _render
from orgmem.errors import OrgmemError

CORRECTION, UNLIKELY = "correction", "unlikely"
MIN_STATEMENT_WORDS = 3
ELLIPSIS = "…"


@dataclass(frozen=True)
class TaughtAnswer:
    """One correction as the engine sees it."""

    question: str
    answer: str
    previous: str = ""
    id: str = ""  # the correction's id, for errors


@dataclass(frozen=True)
class CorrectionPlan:
    """Tonight's corrections (``taught``), earlier ones replayed once (``replayed``), and their weights."""

    taught: Sequence[TaughtAnswer] = ()
    replayed: Sequence[TaughtAnswer] = ()
    repeats: int = 8
    unlikelihood: float = 1.0

    def __bool__(self) -> bool:
        return bool(self.taught or self.replayed)


def _turn_length(tokenizer, question: str, answer: str) -> int:
    item = _render(tokenizer, [(question, answer)], None)
    return len(item) if item is not None else 0


def fit_question(tokenizer, t: TaughtAnswer, max_len: int) -> str:
    """The question, its start cut (marked with an ellipsis) until question → answer fits ``max_len``.

    The answer is what is taught, so it is never cut; the end of a question is what is asked."""
    excess = _turn_length(tokenizer, t.question, t.answer) - max_len
    if excess <= 0:
        return t.question
    q_ids = _encode(tokenizer, t.question)
    keep = len(q_ids) - excess - len(_encode(tokenizer, ELLIPSIS))
    while keep > 0:
        question = ELLIPSIS + tokenizer.decode(q_ids[-keep:]).lstrip()
        over = _turn_length(tokenizer, question, t.answer) - max_len
        if over <= 0:
            return question
        keep -= over
    answer_len = _turn_length(tokenizer, "", t.answer)
    raise OrgmemError(
        f"correction {t.id or t.question[:40]!r}: its corrected answer alone makes a {answer_len}-token "
        f"chat turn, over max_seq_len={max_len}; raise max_seq_len or reject and re-propose it shorter")


def _shared_suffix(a: torch.Tensor, b: torch.Tensor, limit: int) -> int:
    n = min(len(a), len(b), limit)
    same = (a.flip(0)[:n] == b.flip(0)[:n]).long()
    return int(same.cumprod(0).sum())


def _unlikely(tokenizer, t: TaughtAnswer, question: str, good: Item, max_len: int) -> Item | None:
    """The old answer's turn, targets on its span that differs from the corrected turn (the shared
    prefix and the shared suffix are left alone)."""
    if not t.previous.strip() or t.previous.strip() == t.answer.strip():
        return None
    bad = _render(tokenizer, [(question, t.previous)], max_len)
    if bad is None:
        return None
    n = min(len(bad), len(good))
    same = (bad.ids[:n] == good.ids[:n]).long()
    first = int(same.cumprod(0).sum())  # length of the shared prefix
    last = len(bad) - _shared_suffix(bad.ids, good.ids, n - first)
    targets = bad.targets.clone()
    targets[:first] = False
    targets[last:] = False
    eos = tokenizer.eos_token_id
    if eos is not None:
        targets &= bad.ids != eos
    return Item(bad.ids, targets, UNLIKELY) if targets.any() else None


def _plain(tokenizer, text: str, max_len: int, answer_from: int = 1) -> Item | None:
    """A plain text item; targets from token ``answer_from`` on."""
    ids = torch.tensor(_encode(tokenizer, text)[:max_len], dtype=torch.long)
    if len(ids) < 2:
        return None
    targets = torch.zeros(len(ids), dtype=torch.bool)
    targets[max(1, answer_from):] = True
    return Item(ids, targets, CORRECTION) if targets.any() else None


def answer_items(tokenizer, taught: Sequence[TaughtAnswer], max_len: int, *, negative: bool = True
                 ) -> list[Item]:
    """Each correction once: its chat turn, its statement, and (``negative``) its unlikelihood turn."""
    items: list[Item] = []
    for t in taught:
        question = fit_question(tokenizer, t, max_len)
        good = _render(tokenizer, [(question, t.answer)], max_len)
        if good is None:
            raise OrgmemError(f"correction {t.id or t.question[:40]!r}: its chat turn has no answer tokens")
        good.kind = CORRECTION
        items.append(good)
        if len(t.answer.split()) >= MIN_STATEMENT_WORDS:
            statement = _plain(tokenizer, t.answer, max_len)
            if statement is not None:
                items.append(statement)
        # question-agnostic: the question then the answer as one text, targets on the answer
        lead = question.rstrip() + " "
        joined = _plain(tokenizer, lead + t.answer.strip(), max_len, len(_encode(tokenizer, lead.rstrip())))
        if joined is not None:
            items.append(joined)
        bad = _unlikely(tokenizer, t, question, good, max_len) if negative else None
        if bad is not None:
            items.append(bad)
    return items


def plan_items(tokenizer, plan: CorrectionPlan, max_len: int) -> list[Item]:
    """Tonight's corrections ``repeats`` times, replayed ones once (the same objects: their lower
    layers are computed once)."""
    tonight = answer_items(tokenizer, plan.taught, max_len, negative=plan.unlikelihood > 0)
    again = answer_items(tokenizer, plan.replayed, max_len, negative=plan.unlikelihood > 0)
    return tonight * max(1, plan.repeats) + again


def is_unlikely(item: Item) -> bool:
    return item.kind == UNLIKELY
