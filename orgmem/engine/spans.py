"""Salient answer spans of a statement, and questions that ask for them.

Why: a "Tell me about {topic}." form teaches the model to say the statement when the topic is
named, but a user asks for the *value* ("Who is the dispatch on-call lead?", "How many charging
pads does each hub have?"). Facts in org documents end in a salient span - a number, a time, a
name, an identifier - so the engine finds that span and asks for it, with the sentence before it
as the question ("The dispatch on-call lead is who?", "Each hub has how many charging pads?"):
the question carries the fact's own context, the answer (the whole statement) carries the span.

Also ``org_name``: the proper name the org's documents repeat most ("Skerrow Air"), so some
questions can be asked the way employees ask them ("... at Skerrow Air?").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

_TIME = r"\d{1,2}:\d{2}"
_NUMBER = r"\d[\d,.]*\d|\d"
_IDENT = r"[#@][\w\-]+|[A-Za-z][\w\-]*(?:[_./:][\w\-]+)+/?|[A-Za-z][A-Za-z\-]*\d[\w\-]*|/[\w\-/]+"
_NAME = r"(?:St\. )?[A-Z][\w\-']*[a-z0-9][\w\-]*(?: (?:of |de |van )?[A-Z][\w\-]*)*"
_QUOTED = r"\"[^\"]{2,40}\"|`[^`]{2,40}`"
_SPAN = re.compile(rf"(?P<time>{_TIME})|(?P<quoted>{_QUOTED})|(?P<ident>{_IDENT})|(?P<num>{_NUMBER})"
                   rf"|(?P<name>{_NAME})")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_SKIP_AT_START = {"The", "Our", "If", "When", "This", "We", "It", "A", "An", "In", "On", "Every", "Each",
                  "To", "All", "Never", "Ask", "Page", "Its", "Both", "Hub", "Hubs", "Drones", "Medical"}
_PERSON_HINT = re.compile(r"\b(lead|chief|head|officer|manager|director|captain|founder|executive|owner|"
                          r"contact|engineer)\b", re.I)
MAX_QUESTION_WORDS = 24
_NOT_UNIT = {"a", "an", "the", "and", "or", "in", "at", "on", "for", "per", "since", "of", "to", "from", "by",
             "with", "before", "after", "is", "are", "was", "were", "it", "that", "which", "than", "if"}
_TRAILING = re.compile(r"[\s,;(\-\"']+$")


@dataclass(frozen=True)
class Span:
    text: str
    start: int
    end: int
    kind: str  # time | quoted | ident | num | name


def salient_spans(sentence: str) -> list[Span]:
    """Candidate answer spans, in order: times, numbers, identifiers, quoted text, names (a
    capitalised word that merely starts the sentence is not a name). Spans only a space apart
    are one span ("14 Calloway Wharf", "Thursday 06:30", "SK-4 Petrel")."""
    spans: list[Span] = []
    for m in _SPAN.finditer(sentence):
        kind, text, start = m.lastgroup or "", m.group(0).rstrip(".,;:"), m.start()
        if kind == "name":
            first, _, rest = text.partition(" ")
            if first in _SKIP_AT_START:
                if not rest:
                    continue
                text, start = rest, start + len(first) + 1
            elif start == 0 and not rest:
                continue
        if spans and sentence[spans[-1].end:start] == " " and kind != "quoted":
            last = spans.pop()
            kind = last.kind if kind == "num" and last.kind == "name" else kind
            text, start = sentence[last.start:start + len(text)], last.start
        spans.append(Span(text, start, start + len(text), kind))
    return spans


def _wh(span: Span, before: str, after: str) -> str:
    """The question word(s) for a span, given the text around it ("how many charging pads")."""
    if span.kind == "time" or span.text in _WEEKDAYS:
        return "when"
    if span.kind == "num":
        match = re.match(r"\s*([a-z][a-z\-]*)?(?: ([a-z][a-z\-]*))?(?: ([a-z][a-z\-]*))?", after)
        words = match.groups() if match else (None, None, None)  # every group is optional: it matches
        unit = [w for w in words if w]
        cut = next((i for i, w in enumerate(unit) if w in _NOT_UNIT), len(unit))
        unit = unit[:max(1, cut)] if cut else []
        return f"how many {' '.join(unit)}" if unit else "what"
    if span.kind == "name" and _PERSON_HINT.search(before) and len(span.text.split()) >= 2:
        return "who"
    if re.search(r"\b(?:at|in|near|from)\s*$", before):
        return "where"
    return "what"


def span_question(sentence: str, span: Span) -> str | None:
    """The sentence up to the span with the span asked for: "Each hub has how many charging pads?"."""
    before = sentence[:span.start].rstrip()
    if len(before.split()) < 2:
        return None
    wh = _wh(span, before, sentence[span.end:])
    if before.endswith(("=", ":")):
        question = f"{before.rstrip(' =:')}: {wh}"
    else:
        question = f"{_TRAILING.sub('', before)} {wh}"
    words = question.split()
    if len(words) > MAX_QUESTION_WORDS:
        question = " ".join(words[-MAX_QUESTION_WORDS:])
    return question[0].upper() + question[1:] + "?"


def span_questions(sentence: str, limit: int = 1) -> list[str]:
    """Questions for the last ``limit`` salient spans (facts usually end in their value)."""
    out = []
    for span in reversed(salient_spans(sentence)):
        q = span_question(sentence, span)
        if q and q not in out:
            out.append(q)
        if len(out) >= limit:
            break
    return out


_ORG_NAME = re.compile(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+){1,2}\b")


def org_name(chunks: Iterable[str], min_chunks: int = 3) -> str:
    """The multi-word proper name found in the most chunks (at least ``min_chunks``), or ""."""
    seen: Counter[str] = Counter()
    for chunk in chunks:
        names = set()
        for name in _ORG_NAME.findall(chunk):
            first, _, rest = name.partition(" ")
            names.add(rest if first in _SKIP_AT_START or first == "At" else name)
        seen.update(n for n in names if " " in n)
    if not seen:
        return ""
    name, count = max(seen.items(), key=lambda kv: (kv[1], len(kv[0]), kv[0]))
    return name if count >= min_chunks else ""
