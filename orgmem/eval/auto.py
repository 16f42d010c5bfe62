"""Probes generated from an org's own chunks, so a gate can judge a checkpoint without
hand-written questions.

Two kinds, both cut from the chunk text the checkpoint was trained on:
- *identifier cloze*: the text before a number, code identifier or hyphenated codename, with that
  token as the answer (``DOCK_PORT = `` → ``6291``). Org documents put their facts in exactly
  such tokens, and a base model cannot guess them.
- *continuation*: a prefix ending at a line/sentence boundary, with the next few words as the
  answer; judged by answer NLL (exact recall of free prose is too strict a bar).
Selection is a seeded sample over candidates enumerated in chunk order: the same chunks, ``n``
and ``seed`` always give the same probes.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from orgmem.eval.probes import Probe, join_cloze

IDENTIFIER = re.compile(
    r"(?<![\w.-])("
    r"\d+(?:[.:,]\d+)*"  # numbers, versions, times: 6291, 3.14, 02:30
    r"|[A-Za-z]+(?:-[A-Za-z0-9]+)*-\d+[A-Za-z0-9]*"  # codenames with a number: basalt-2, qm-ops-7
    r"|[a-z][a-z0-9]*(?:_[a-z0-9]+)+"  # snake_case identifiers
    r"|[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]+)+"  # CamelCase identifiers
    r")(?![\w-])"
)
CLAUSE_SPACE = re.compile(r"(?<=[.!?;:,]) (?=\S)")


@dataclass(frozen=True)
class AutoProbeConfig:
    """Sizes in characters/words; defaults keep prompts short (fast) yet specific."""

    min_prefix_chars: int = 24
    max_prefix_chars: int = 240
    min_answer_chars: int = 2
    continuation_words: int = 6
    cloze_share: float = 0.5


def _text_of(chunk) -> str:
    return chunk if isinstance(chunk, str) else str(chunk.text)


def _name_of(chunk, index: int) -> str:
    for attr in ("id", "chunk_id", "uri", "doc_id"):
        value = getattr(chunk, attr, None)
        if value not in (None, ""):
            return str(value)
    return f"chunk{index}"


def _prefix(text: str, end: int, answer: str, cfg: AutoProbeConfig) -> str | None:
    """Up to ``max_prefix_chars`` before ``end``, starting at a word boundary. None when too
    short, or when prefix + answer would not re-join to the original text (e.g. a line break
    before the answer), so answer NLL always scores the tokens the document really has."""
    start = max(0, end - cfg.max_prefix_chars)
    if start > 0:
        space = text.find(" ", start, end)
        start = space + 1 if space != -1 else start
    prefix = text[start:end].rstrip()
    if len(prefix.strip()) < cfg.min_prefix_chars:
        return None
    return prefix if text.startswith(join_cloze(prefix, answer), start) else None


def _fact_id(name: str, text: str, offset: int) -> str:
    digest = hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()[:8]  # an id, not a MAC
    return f"auto:{name}:{digest}:{offset}"


def cloze_candidates(text: str, name: str, cfg: AutoProbeConfig) -> list[Probe]:
    """One probe per distinct identifier that is not already visible in its own prefix."""
    out, seen = [], set()
    for match in IDENTIFIER.finditer(text):
        answer = match.group(1)
        if answer in seen or len(answer) < cfg.min_answer_chars:
            continue
        prefix = _prefix(text, match.start(1), answer, cfg)
        if prefix is None or answer in prefix:
            continue
        seen.add(answer)
        out.append(Probe(fact=_fact_id(name, text, match.start(1)), cloze=prefix, answer=answer,
                         kind="auto", source=name))
    return out


def _continuation_points(text: str) -> list[int]:
    """Offsets of single spaces after clause punctuation or after a line's first word: cutting
    there and re-joining prefix + " " + answer reproduces the original text exactly."""
    points, line_start = [], 0
    for line in text.split("\n"):
        first = line.find(" ", len(line) - len(line.lstrip()))
        if first > 0:
            points.append(line_start + first)
        points += [line_start + m.start() for m in CLAUSE_SPACE.finditer(line) if m.start() != first]
        line_start += len(line) + 1
    return sorted(set(points))


def continuation_candidates(text: str, name: str, cfg: AutoProbeConfig) -> list[Probe]:
    """Prefixes cut at a clause/line boundary, the next words of that line as the answer."""
    out = []
    for point in _continuation_points(text):
        line_rest = text[point + 1 :].split("\n", 1)[0]
        words = line_rest.split(" ")[: cfg.continuation_words]
        if len(words) < 2 or not all(words):
            continue
        prefix = _prefix(text, point, " ".join(words), cfg)
        if prefix is not None:
            out.append(Probe(fact=_fact_id(name, text, point), cloze=prefix, answer=" ".join(words),
                             kind="auto", source=name))
    return out


def auto_probes(chunks: Sequence, n: int, seed: int = 0,
                config: AutoProbeConfig = AutoProbeConfig()) -> list[Probe]:
    """``n`` probes from ``chunks`` (strings or objects with ``.text``), deterministic in ``seed``.

    About ``cloze_share`` of them are identifier clozes (fewer if the chunks hold fewer), the rest
    continuations. Raises ValueError naming the problem when the chunks yield no probe at all.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    clozes, conts = [], []
    for index, chunk in enumerate(chunks):
        text, name = _text_of(chunk), _name_of(chunk, index)
        clozes += cloze_candidates(text, name, config)
        conts += continuation_candidates(text, name, config)
    if not clozes and not conts:
        raise ValueError(f"no auto-probe candidates in {len(chunks)} chunk(s): texts are too short "
                         f"(need > {config.min_prefix_chars} characters before an identifier or clause end)")
    rng = random.Random(seed)  # nosec B311  # seeded, reproducible probe choice: no secret
    n_cloze = min(len(clozes), max(round(n * config.cloze_share), n - len(conts)))
    picked = rng.sample(clozes, n_cloze) + rng.sample(conts, min(len(conts), n - n_cloze))
    return sorted(picked, key=lambda p: p.fact)
