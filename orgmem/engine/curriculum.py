"""Active-recall curriculum: train each fact until it is stored, with a new phrasing every time.

Why: the engine used to train every form a fixed 4 times; facts came out memorised in one wording
and unanswerable in another (docs/knowledge_tuning.md). Here each statement with something to
retrieve is a ``Fact`` (``questions.unit_fact``) with a pool of question phrasings and answer
forms. Every step draws facts by their current answer loss (the ones not yet stored most), each as
a single-turn conversation with a question and an answer form it has not used lately; the loss
the step measures on that form (before its update, on a phrasing it may never have seen) is the
fact's recall signal. A fact counts as stored once ``stored_hits`` draws in a row were below
``stored_loss``; stored facts are only reviewed now and then. The night ends when every fact is
stored and the documents' own passes (text windows, statements) are done, or at the exposure cap.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from orgmem.engine.forms import ChatForm, split_units
from orgmem.engine.items import Item, conversation_item
from orgmem.engine.questions import Fact, unit_fact
from orgmem.engine.spans import org_name


@dataclass(eq=False)
class FactState:
    """Where one fact stands tonight: its drawn forms, its last losses, how often it was seen."""

    fact: Fact
    order: list[tuple[int, int]]  # (question, answer) index pairs, shuffled, consumed cyclically
    loss: float = 5.0
    hits: int = 0
    seen: int = 0
    items: dict[tuple[int, int], Item] = field(default_factory=dict)



@dataclass
class CurriculumConfig:
    """Knobs of the curriculum (copied from ``ConsolidationConfig``)."""

    fact_share: float = 0.75  # of each step's tokens
    stored_loss: float = 0.15  # mean answer-token CE below which a draw counts as recalled
    stored_hits: int = 2  # consecutive recalled draws that make a fact stored
    max_exposures: int = 40  # per fact per night
    min_exposures: int = 4  # per fact per night, even when recalled from the start
    review_rate: float = 0.1  # chance a stored fact is drawn again (so it is not overwritten)


def night_facts(chunks: Sequence[str]) -> list[Fact]:
    """Every fact of a night's chunks, deduplicated by statement."""
    chunks = list(chunks)
    org = org_name(chunks)
    facts, seen = [], set()
    for chunk in chunks:
        for unit in split_units(chunk):
            fact = unit_fact(unit, org)
            if fact is not None and fact.key not in seen:
                seen.add(fact.key)
                facts.append(fact)
    return facts


class Curriculum:
    """Draws each step's fact items and learns from their losses; documents' items ride along."""

    def __init__(self, tokenizer, facts: Sequence[Fact], documents: Sequence[Item], config: CurriculumConfig,
                 tokens_per_step: int, max_len: int, rng: random.Random) -> None:
        self.tokenizer, self.config, self.rng = tokenizer, config, rng
        self.tokens_per_step, self.max_len = tokens_per_step, max_len
        self.states = []
        for fact in facts:
            order = [(q, a) for q in range(len(fact.questions)) for a in range(len(fact.answers))]
            rng.shuffle(order)
            self.states.append(FactState(fact, order))
        self.documents = list(documents)
        rng.shuffle(self.documents)
        self.steps = 0

    # -- drawing ---------------------------------------------------------------------------------
    def is_stored(self, state: FactState) -> bool:
        return state.hits >= self.config.stored_hits and state.seen >= self.config.min_exposures

    def active(self) -> list[FactState]:
        """Facts still to be drawn for learning: not yet stored and under the exposure cap."""
        return [s for s in self.states if s.seen < self.config.max_exposures and not self.is_stored(s)]

    def max_steps(self) -> int:
        """An upper bound on tonight's steps (every fact at its cap, every document item once)."""
        tokens = sum(len(it) for it in self.documents)
        tokens += sum(self.config.max_exposures * 80 for _ in self.states)
        return max(1, -(-tokens // self.tokens_per_step))

    @property
    def done(self) -> bool:
        return not self.documents and not self.active()

    def _item(self, state: FactState) -> Item | None:
        pair = state.order[state.seen % len(state.order)]
        if pair not in state.items:
            q, a = pair
            form = ChatForm(state.fact.questions[q], state.fact.answers[a])
            item = conversation_item(self.tokenizer, [form], self.max_len)
            if item is None:  # the answer does not fit in max_len: this pair is used up
                state.seen += 1
                return None
            item.kind = "fact"
            state.items[pair] = item
        return state.items[pair]

    def next_step(self) -> list[tuple[Item, FactState | None]]:
        """Items of the next step, each with the fact it exercises (None for document items)."""
        budget = self.tokens_per_step
        fact_budget = budget * self.config.fact_share if self.documents else budget
        chosen: list[tuple[Item, FactState | None]] = []
        used = 0
        active = self.active()
        review = [s for s in self.states if s not in active]
        weights = [s.loss + 0.05 for s in active]
        pool = list(active)
        while pool and used < fact_budget:
            state = self.rng.choices(pool, weights=weights, k=1)[0]
            i = pool.index(state)
            pool.pop(i)
            weights.pop(i)
            if (item := self._item(state)) is not None:
                chosen.append((item, state))
                used += len(item)
        for state in review:
            if used < fact_budget and self.rng.random() < self.config.review_rate:
                if (item := self._item(state)) is not None:
                    chosen.append((item, state))
                    used += len(item)
        while self.documents and used < budget:
            item = self.documents.pop()
            chosen.append((item, None))
            used += len(item)
        self.steps += 1
        return chosen

    # -- learning from the step -------------------------------------------------------------------
    def observe(self, drawn: Sequence[tuple[Item, FactState | None]], losses: Sequence[float]) -> None:
        """Per-item mean target loss of the step just taken (measured before its update)."""
        for (_item, state), loss in zip(drawn, losses, strict=True):
            if state is None:
                continue
            state.seen += 1
            state.loss = loss
            state.hits = state.hits + 1 if loss < self.config.stored_loss else 0

    def summary(self) -> dict:
        n = len(self.states)
        seen = [s.seen for s in self.states]
        return {"facts": n, "facts_stored": sum(1 for s in self.states if self.is_stored(s)),
                "exposures_mean": round(sum(seen) / n, 1) if n else 0.0,
                "exposures_max": max(seen) if seen else 0,
                "fact_loss_mean": round(sum(s.loss for s in self.states) / n, 3) if n else None,
                "forms_tokenised": sum(len(s.items) for s in self.states)}
