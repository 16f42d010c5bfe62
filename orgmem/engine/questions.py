"""A pool of question phrasings and answer forms per statement, built by rule.

Why: a fact trained under one phrasing is memorised but not extractable by a question in other
words (Physics of LMs 3.1; our own row I: cloze 33/43, question 13/43). The cure the literature
measured is many phrasings per fact, drawn anew on every exposure. Every salient span of a
statement (``spans.salient_spans``) is asked for, in several syntactic shapes derived from the
sentence itself, never from a corpus: the declarative order ("Each hub has how many charging
pads?"), wh-fronting with auxiliary inversion or do-support ("How many charging pads does each hub
have?"), an embedded question ("Can you tell me how many charging pads each hub has?"), scoped by
the section heading or by the org's name, and topic questions ("What is X?", "Tell me about X.").
Answers come in up to three forms: the statement, the code line as written, and the statement cut
right after the value. (A "value. statement" form was dropped: row N taught replies that repeat a
span such as the org's name, "Skerrow Air. Skerrow Air. ...".)
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from orgmem.engine.forms import Unit, gloss_question, leading_noun_phrase, unit_topics, value_answer
from orgmem.engine.spans import Span, _wh, salient_spans

MAX_SPANS_PER_UNIT = 3
_SINGLE_AUX = {"is", "are", "was", "were", "can", "will", "must", "should", "may", "might", "would", "could"}
_IRREGULAR = {"has": "have", "does": "do", "goes": "go", "is": "be", "was": "be"}
_PAST_IRREGULAR = {"had": "have", "did": "do", "went": "go", "took": "take", "got": "get", "made": "make",
                   "ran": "run", "sent": "send", "kept": "keep", "left": "leave", "led": "lead"}
_DETERMINER_START = re.compile(r"^(?:The|Our|A|An|Each|Every|All|This|These|Its|Their)\s", re.I)
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Fact:
    """One statement to store, with every question that may ask for it and every answer form."""

    key: str
    questions: tuple[str, ...]
    answers: tuple[str, ...]


def _lemma(verb: str) -> tuple[str, str] | None:
    """(do-form, base form) of a 3rd-person present or simple past verb, or None."""
    low = verb.lower()
    if low in _IRREGULAR:
        return "does", _IRREGULAR[low]
    if low in _PAST_IRREGULAR:
        return "did", _PAST_IRREGULAR[low]
    if low.endswith("ied") and len(low) > 4:
        return "did", low[:-3] + "y"
    if low.endswith("ed") and len(low) > 3:
        stem = low[:-2]
        return "did", stem[:-1] if len(stem) > 2 and stem[-1] == stem[-2] else (
            stem + "e" if stem.endswith(("at", "iz", "us", "v", "ir", "ag")) else stem)
    if low.endswith("ies") and len(low) > 4:
        return "does", low[:-3] + "y"
    if low.endswith(("sses", "shes", "ches", "xes", "zes")):
        return "does", low[:-2]
    if low.endswith("s") and not low.endswith(("ss", "us", "is")) and len(low) > 2:
        return "does", low[:-1]
    if low.isalpha():
        return "do", low  # plural subject: "Hub crews log ..."
    return None


def _lower_first(text: str) -> str:
    """"Each hub has" → "each hub has"; proper names ("Skerrow Air", "DISPATCH_PORT") stay."""
    return text[:1].lower() + text[1:] if _DETERMINER_START.match(text + " ") else text


def _subject_split(before: str) -> tuple[str, str, str] | None:
    """("Each hub", "has", "") or ("The dispatch on-call lead", "is", "") from the text before a
    span; the third part is what follows the verb (objects, prepositions)."""
    words = _WORD.findall(before)
    np = leading_noun_phrase(before)
    if not np:
        return None
    # the subject as written (with its determiner), up to and including the noun phrase's last word
    last = np.split()[-1]
    idx = next((i for i, w in enumerate(words) if w.strip(",;:()\"'").rstrip(".") == last), None)
    if idx is None or idx + 1 >= len(words):
        return None
    subject = " ".join(words[: idx + 1])
    verb = words[idx + 1]
    rest = " ".join(words[idx + 2:])
    if verb.lower() in _SINGLE_AUX or verb.lower() in _IRREGULAR or _lemma(verb):
        return subject, verb, rest
    return None


def fronted_question(before: str, wh: str) -> str | None:
    """Wh-fronting: "Each hub has" + "how many charging pads" → "How many charging pads does each
    hub have?"; "The dispatch on-call lead is" + "who" → "Who is the dispatch on-call lead?"."""
    split = _subject_split(before)
    if split is None:
        return None
    subject, verb, rest = split
    subject = _lower_first(subject)
    low = verb.lower()
    if low in _SINGLE_AUX:
        body = f"{wh} {low} {subject} {rest}".strip()
    else:
        lemma = _lemma(verb)
        if lemma is None:
            return None
        do, base = lemma
        body = f"{wh} {do} {subject} {base} {rest}".strip()
    body = re.sub(r"\s+", " ", body).rstrip(" ,;:-")
    return body[:1].upper() + body[1:] + "?"


def embedded_clause(before: str, wh: str) -> str:
    """"how many charging pads each hub has": the question as a clause, in statement order."""
    return re.sub(r"\s+", " ", f"{wh} {_lower_first(before.rstrip(' ,;:-=('))}").strip()


def _span_questions(text: str, span: Span, context: str, org: str) -> list[str]:
    before = text[: span.start].rstrip()
    if len(before.split()) < 2:
        return []
    wh = _wh(span, before, text[span.end:])
    head = re.sub(r"[\s,;(\-\"'=:]+$", "", before)
    plain = f"{head} {wh}"
    out = [plain[:1].upper() + plain[1:] + "?"]
    if wh == "where":  # "The newest hub is at where?" → "Where is the newest hub?"
        head = re.sub(r"\s+(?:at|in|near|from)$", "", head)
    fronted = fronted_question(head, wh)
    if fronted:
        out.append(fronted)
        low = fronted[:1].lower() + fronted[1:]
        if org and org.lower() not in fronted.lower():
            out.append(f"At {org}, {low}")
        if context:
            out.append(f"{context}: {low}")
        out.append(f"Quick question: {low}")
    clause = embedded_clause(head, wh)
    out += [f"Can you tell me {clause}?", f"Do you know {clause}?", f"I need to know {clause}."]
    if org and org.lower() not in clause.lower():
        out.append(f"Tell me {clause} at {org}.")
    return out


def _topic_questions(unit: Unit, org: str) -> list[str]:
    out = []
    for shape, topic in unit_topics(unit)[:3]:
        if "=" in topic or (unit.value and unit.value in topic):
            continue  # a "topic" that contains the answer teaches copying, not recall
        verb = "is" if shape in ("what", "about") else shape
        out += [f"What {verb} {topic}?", f"Tell me about {topic}.", f"What do you know about {topic}?"]
        if org and org.lower() not in topic.lower():
            out.append(f"What {verb} {topic} at {org}?")
    if unit.subject and re.fullmatch(r"[A-Za-z_][\w.]*", unit.subject):
        out += [f"What is {unit.subject} set to?", f"What value does {unit.subject} have?",
                f"What is the value of {unit.subject}?"]
    if gloss := gloss_question(unit):
        out.append(gloss)
    return out


def _answer_forms(unit: Unit, span: Span | None) -> list[str]:
    statement = value_answer(unit)
    out = [statement]
    if unit.text != statement:
        out.append(unit.text)
    if span is not None:
        cut = unit.text[: span.end].rstrip(" ,;:")
        if len(cut.split()) >= 3 and cut != unit.text.rstrip("."):
            out.append(cut + ".")
    return out


def _dedupe(items: list[str]) -> tuple[str, ...]:
    seen, out = set(), []
    for q in items:
        q = re.sub(r"\s+", " ", q).strip()
        if q and q.lower() not in seen:
            seen.add(q.lower())
            out.append(q)
    return tuple(out)


def unit_fact(unit: Unit, org: str = "") -> Fact | None:
    """The unit's question pool and answer forms; None for a unit with nothing to retrieve (no
    salient span, no named subject)."""
    code_value = bool(unit.value) and bool(re.fullmatch(r"[A-Za-z_][\w.]*", unit.subject))
    spans = [] if code_value else salient_spans(unit.text)[-MAX_SPANS_PER_UNIT:]
    if not spans and not unit.subject:
        return None
    questions: list[str] = []
    answers: list[str] = []
    for span in reversed(spans):  # facts usually end in their value: the last span first
        questions += _span_questions(unit.text, span, unit.context, org)
        answers += _answer_forms(unit, span)
    questions += _topic_questions(unit, org)
    if code_value:  # an assignment: the value is known exactly, no span search needed
        statement = value_answer(unit)
        answers = [statement, unit.text, f"{unit.subject} is {unit.value}."]
    if not answers:
        answers = _answer_forms(unit, None)
    pool = _dedupe(questions)
    if not pool:
        return None
    return Fact(f"{zlib.crc32(unit.text.encode()):08x}", pool, _dedupe(answers))
