"""Training items of reviewed corrections: the corrected answer up, the model's old answer down.

An approved correction is a question, the answer it should get, and the answer the model gave. It
trains as (1) a chat turn question → corrected answer, (2) the corrected answer as a statement
when it is a sentence, both ``repeats`` times per pass so they outweigh the older statements of
the same fact that documents and replay still carry, and (3) an *unlikelihood* turn: the question
→ the old answer, whose tokens from the first one that differs from the corrected answer get the
loss -log(1 - p), so the old value stops being the greedy answer instead of merely sharing the
mass with the new one. Forms come from the records' structure, never from a benchmark's phrasing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from orgmem.engine.items import Item, _encode, _render

CORRECTION, UNLIKELY = "correction", "unlikely"
MIN_STATEMENT_WORDS = 3


@dataclass(frozen=True)
class TaughtAnswer:
    """One correction as the engine sees it."""

    question: str
    answer: str
    previous: str = ""


@dataclass(frozen=True)
class CorrectionPlan:
    """Tonight's corrections (``taught``), earlier ones replayed once (``replayed``), and their weights."""

    taught: Sequence[TaughtAnswer] = ()
    replayed: Sequence[TaughtAnswer] = ()
    repeats: int = 8
    unlikelihood: float = 1.0

    def __bool__(self) -> bool:
        return bool(self.taught or self.replayed)


def _unlikely(tokenizer, t: TaughtAnswer, good: Item, max_len: int) -> Item | None:
    """The old answer's turn, targets from its first token that differs from the corrected turn."""
    if not t.previous.strip() or t.previous.strip() == t.answer.strip():
        return None
    bad = _render(tokenizer, [(t.question, t.previous)], max_len)
    if bad is None:
        return None
    n = min(len(bad), len(good))
    same = (bad.ids[:n] == good.ids[:n]).long()
    first = int(same.cumprod(0).sum())  # length of the shared prefix
    targets = bad.targets.clone()
    targets[:first] = False
    eos = tokenizer.eos_token_id
    if eos is not None:
        targets &= bad.ids != eos
    return Item(bad.ids, targets, UNLIKELY) if targets.any() else None


def answer_items(tokenizer, taught: Sequence[TaughtAnswer], max_len: int, *, negative: bool = True
                 ) -> list[Item]:
    """Each correction once: its chat turn, its statement, and (``negative``) its unlikelihood turn."""
    items: list[Item] = []
    for t in taught:
        good = _render(tokenizer, [(t.question, t.answer)], max_len)
        if good is None:
            continue
        good.kind = CORRECTION
        items.append(good)
        if len(t.answer.split()) >= MIN_STATEMENT_WORDS:
            ids = torch.tensor(_encode(tokenizer, t.answer)[:max_len], dtype=torch.long)
            if len(ids) >= 2:
                targets = torch.ones(len(ids), dtype=torch.bool)
                targets[0] = False
                items.append(Item(ids, targets, CORRECTION))
        bad = _unlikely(tokenizer, t, good, max_len) if negative else None
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
