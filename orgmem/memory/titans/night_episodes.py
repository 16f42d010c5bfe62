"""Meta-training episodes shaped like a night: thousands of tokens of mixed org material.

A night delivers code files, docs pages, chat logs and news items, most of it unrelated to any
question; the facts sit scattered through it, and some are changed by a later document (a new port,
a new team lead). A memory meta-trained on a few hundred tokens of back-to-back facts learned to
keep the last thing it read (``docs/gpu_session.md``); these episodes make it keep the whole night
and prefer the later value.

Everything is invented from a seed (``episodes.py`` draws the facts). The four document forms are
generic structures (a Python module, a markdown page, a timestamped chat log, a dated news item),
filled with invented filler, not copied from any benchmark; a fact is rendered in the form of the
document it lands in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from orgmem.memory.titans.episodes import (
    _CITIES,
    _FIRST,
    _TEAMS,
    _WORDS,
    Episode,
    Fact,
    _fact,
    _name,
    query_pieces,
    updated_fact,
)

STYLES = ("code", "docs", "chat", "news")
_VERBS = ["validates", "caches", "batches", "retries", "schedules", "indexes", "compresses", "signs",
          "forwards", "aggregates", "throttles", "exports", "reconciles", "archives"]
_NOUNS = ["invoices", "sessions", "events", "orders", "tokens", "reports", "snapshots", "requests",
          "shipments", "metrics", "payloads", "tickets", "accounts", "webhooks"]
_ADJ = ["nightly", "stale", "pending", "regional", "partial", "duplicate", "encrypted", "large", "failed"]
_CHATTER = ["lgtm", "ok, looking now", "thanks!", "can someone review my PR?", "back in 10",
            "is the staging deploy stuck again?", "+1", "who owns the flaky test?", "merged",
            "standup moved to 10:30 today", "I'll take that ticket", "dashboards look normal now",
            "coffee anyone?", "rolling back, one sec", "ping me if it happens again"]


@dataclass(frozen=True)
class NightShape:
    """How a night episode looks: its length and how densely facts (and changes) appear."""

    tokens: int = 2048  # write tokens, about (documents are added until this is reached)
    facts_per_k: float = 3.0  # facts per 1000 write tokens (at least 2)
    update_share: float = 0.3  # share of facts changed by a later document
    queries: int = 4
    chat_prob: float = 0.5


@dataclass(frozen=True)
class NightEpisode(Episode):
    """An episode whose write side is a list of documents (in delivery order)."""

    documents: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()  # questions whose answer is the later value
    earlier: tuple[Fact, ...] = ()  # the first values of those facts (stated before the change)


# ---- filler, one generator per form ------------------------------------------------------------
def _sentence(rng: random.Random) -> str:
    svc, other = _name(rng), _name(rng)
    forms = [
        f"The {svc} service {rng.choice(_VERBS)} {rng.choice(_ADJ)} {rng.choice(_NOUNS)} before "
        f"handing them to {other}.",
        f"When {rng.choice(_NOUNS)} arrive out of order, {svc} {rng.choice(_VERBS)} them again.",
        f"Most {rng.choice(_NOUNS)} are small, but {rng.choice(_ADJ)} ones can take a while to process.",
        f"See the {rng.choice(_TEAMS)} handbook for how {svc} {rng.choice(_VERBS)} {rng.choice(_NOUNS)}.",
        f"{svc} keeps {rng.randint(2, 30)} days of {rng.choice(_NOUNS)} and drops the rest.",
        f"If a request fails, the client waits and tries again up to {rng.randint(2, 6)} times.",
    ]
    return rng.choice(forms)


def _code_block(rng: random.Random) -> list[str]:
    verb, noun = rng.choice(_VERBS)[:-1], rng.choice(_NOUNS)
    attr = rng.choice(["ok", "ready", "owner", "size"])
    limit = rng.randint(5, 500)
    return [f"def {verb}_{noun}(items, limit={limit}):",
            f'    """{verb.capitalize()} the {rng.choice(_ADJ)} {noun}."""',
            "    out = []",
            "    for item in items[:limit]:",
            f"        if item.{attr}:",
            "            out.append(item)",
            "    return out", ""]


def _chat_line(rng: random.Random, text: str | None = None) -> str:
    who = rng.choice(_FIRST).lower()
    return f"[{rng.randint(8, 18):02d}:{rng.randint(0, 59):02d}] {who}: {text or rng.choice(_CHATTER)}"


def _render_fact(rng: random.Random, style: str, fact: Fact, update: bool) -> str:
    """A fact as a line of a document of ``style`` (a change says so, in that form's own way)."""
    s = fact.statement
    if style == "code":
        note = "  # changed" if update else ""
        return f"{fact.code}{note}  # {s}" if fact.code else f"# {'Update: ' if update else ''}{s}"
    if style == "chat":
        text = rng.choice(["heads up, this changed: ", "update: ", "correction: "]) + s if update else \
            rng.choice(["fyi ", "reminder: ", "", "note that "]) + s
        return _chat_line(rng, text)
    if style == "news":
        return (rng.choice(["As of this week, ", "Following the reorganisation, ", "Starting today, "]) + s
                if update else s)
    return ("(Updated) " + s) if update else rng.choice(["- ", ""]) + s


def _document(rng: random.Random, style: str, blocks: int, events: list[tuple[Fact, bool]]) -> str:
    """A document of ``style`` with ``blocks`` filler blocks and the ``events`` placed among them."""
    if style == "code":
        body: list[str] = [f'"""{_name(rng)}: {rng.choice(_VERBS)} {rng.choice(_NOUNS)}."""', "",
                           "import logging", ""]
        fill = ["\n".join(_code_block(rng)) for _ in range(blocks)]  # facts go between functions
    elif style == "chat":
        body = [f"#{rng.choice(_TEAMS)} — {rng.choice(['Mon', 'Tue', 'Wed', 'Thu', 'Fri'])}"]
        fill = [_chat_line(rng) for _ in range(blocks * 3)]
    elif style == "news":
        body = [f"{_name(rng)} {rng.choice(['opens', 'expands', 'launches', 'retires'])} "
                f"{rng.choice(_WORDS)} programme"]
        fill = [" ".join(_sentence(rng) for _ in range(2)) for _ in range(blocks)]
        fill[0] = f"{rng.choice(_CITIES)} — {fill[0]}"
    else:
        body = [f"# {rng.choice(_TEAMS).capitalize()}: {rng.choice(_NOUNS)}", ""]
        fill = [" ".join(_sentence(rng) for _ in range(3)) + "\n" for _ in range(blocks)]
    for fact, update in events:
        fill.insert(rng.randint(0, len(fill)), _render_fact(rng, style, fact, update))
    return "\n".join(body + fill)


def _events(rng: random.Random, n_docs: int, facts: list[Fact], updates: dict[int, Fact]
            ) -> list[list[tuple[Fact, bool]]]:
    """Per document, the facts stated in it; a changed fact's new value lands in a later document."""
    placed: list[list[tuple[Fact, bool]]] = [[] for _ in range(n_docs)]
    for i, fact in enumerate(facts):
        if i in updates and n_docs > 1:
            first = rng.randrange(n_docs - 1)
            placed[first].append((fact, False))
            placed[rng.randrange(first + 1, n_docs)].append((updates[i], True))
        else:
            placed[rng.randrange(n_docs)].append((fact, False))
    return placed


def make_night_episode(rng: random.Random, tokenizer, shape: NightShape) -> NightEpisode:
    """One night: documents of mixed forms to about ``shape.tokens`` tokens, facts spread through
    them (some changed later), then questions in a fresh context whose answers are the final values."""
    n_facts = max(2, round(shape.tokens / 1000 * shape.facts_per_k))
    facts = [_fact(rng) for _ in range(n_facts)]
    n_updates = round(n_facts * shape.update_share)
    updates = {i: updated_fact(rng, facts[i]) for i in rng.sample(range(n_facts), n_updates)}
    styles, blocks = [], []
    total = 0
    while total < shape.tokens:  # filler first, so facts do not change how long the night is
        style, n = rng.choice(STYLES), rng.randint(2, 5)
        styles.append(style)
        blocks.append(n)
        total += len(tokenizer(_document(random.Random(rng.random()), style, n, []),  # nosec B311
                               add_special_tokens=False)["input_ids"])
    events = _events(rng, len(styles), facts, updates)
    docs = tuple(_document(rng, s, n, e) for s, n, e in zip(styles, blocks, events, strict=True))
    final = [updates.get(i, f) for i, f in enumerate(facts)]
    changed = [updates[i] for i in sorted(updates)]
    # ask the changed facts first (up to half the questions): they are what a stale memory gets wrong
    asked = changed[: shape.queries // 2]
    asked += rng.sample([f for f in final if f not in asked], min(shape.queries - len(asked),
                                                                  len(final) - len(asked)))
    rng.shuffle(asked)
    pieces = query_pieces(rng, tokenizer, asked, shape.chat_prob)
    return NightEpisode("\n\n".join(docs), pieces, final, documents=docs,
                        updated=tuple(f.question for f in changed),
                        earlier=tuple(facts[i] for i in sorted(updates)))


__all__ = ["STYLES", "NightEpisode", "NightShape", "make_night_episode"]
