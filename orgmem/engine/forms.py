"""Training forms derived from raw chunks: statements and question → answer pairs.

Why: training the material *also in chat form* is what makes question answering work (16 → 25–27
of 30 facts; ``docs/knowledge_tuning.md``, starting point), but real documents come with no fact
list and no questions. This module derives them from the text itself, with no hand-written questions:

1. ``split_units(chunk)`` cuts a chunk into self-contained statements (``Unit``): sentences and
   list items of prose, one message per chat line, a comment + assignment or a docstring in code.
2. ``unit_topics(unit)`` finds what a statement is about: ``X`` of "X is Y" / "X = Y" / "X: Y",
   identifiers, names (capitalised word runs), and the leading noun phrase.
3. ``chat_forms(chunks)`` turns each unit into user turns such as "Tell me about {topic}." or
   "What is {X}?" whose assistant answer is the statement.

Heuristics only (no tagger, no download); deterministic: the same chunks give the same forms.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from orgmem.engine.spans import org_name, span_questions

MAX_UNIT_CHARS = 400
MIN_UNIT_WORDS = 3
MAX_TOPIC_WORDS = 6


@dataclass(frozen=True)
class Unit:
    """One statement from a chunk; ``context`` is the nearest heading / file / channel title."""

    text: str
    context: str = ""
    subject: str = ""  # set when the source shape names it (assignment, definition, "X: Y")
    value: str = ""  # an assignment's value, without its inline comment
    gloss: str = ""  # what the code's comment says the value is ("Kubernetes cluster that runs ...")


@dataclass(frozen=True)
class ChatForm:
    question: str
    answer: str
    context: str = ""  # the chunk the answer comes from (the context-distillation teacher reads it)


# -- splitting -------------------------------------------------------------------------------------
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(?P<title>.+?)\s*#*\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+(?P<body>.+)$")
_CHAT_LINE = re.compile(
    r"^\s*(?:\[[^\]]{1,40}\]\s*)?(?:\d{1,2}:\d{2}(?::\d{2})?\s+)?"
    r"(?P<who>@?[\w.\-]{1,40}(?: [A-Z][\w.\-]{0,20})?)\s*:\s+(?P<body>.{3,})$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9`])")
_CODE_HINT = re.compile(r"^\s*(def |class |import |from \S+ import|return\b|"
                        r"[A-Za-z_][\w.]*\s*(?::[^=]+)?=[^=]|"
                        r"\}|\{|\)|const |let |var |func |fn |pub |@\w|[rubf]?\"\"\"|if .*:$|for .*:$)")
_ASSIGN = re.compile(r"^\s*(?:export\s+)?(?:const\s+|let\s+|var\s+|final\s+)?(?P<name>[A-Za-z_][\w.]*)"
                     r"\s*(?::\s*[\w\[\], .|]+)?\s*[=:]\s*(?P<value>[^=].*?)[;,]?\s*$")
_DEF = re.compile(r"^\s*(?:async\s+)?(?:def|class|func|fn|function)\s+(?P<name>[A-Za-z_]\w*)")
_COMMENT = re.compile(r"^\s*(?:#|//|--|\*|/\*+)\s?(?P<body>.*?)\s*(?:\*/)?$")
_DOCSTRING = re.compile(r"^\s*(?:[rubf]?\"\"\"|''')(?P<body>.+?)(?:\"\"\"|''')?\s*$")
_KEY_VALUE = re.compile(r"^(?P<indent>\s*)(?:- )?(?P<key>[A-Za-z_][\w.\-]*)\s*:(?:\s+(?P<value>\S.*?))?\s*$")
_IF_EQUALS = re.compile(r"^\s+(?:el)?if \w+ == (?P<value>[\"'][^\"']{1,40}[\"']|[\w.\-]+)\s*:\s*$")
_RETURN = re.compile(r"^\s+return (?P<value>[^\s(][^(]{0,40}?)\s*$")
_HEADER = re.compile(r"^\[[\w\-]+:[^\]]*\]\s+(?P<title>\S.*)$")


def _clean(text: str) -> str:
    text = re.sub(r"\*\*|__|(?<!\w)\*(?!\s)|(?<!\s)\*(?!\w)", "", text)
    return re.sub(r"\s+", " ", text).strip()


def _is_code(lines: list[str]) -> bool:
    """Code when >= 40% of the non-comment lines look like code ('#' lines are markdown headings too)."""
    meaningful = [ln for ln in lines if ln.strip() and not _COMMENT.match(ln)]
    if not meaningful:
        return False
    hits = sum(1 for ln in meaningful if _CODE_HINT.match(ln))
    return hits / len(meaningful) >= 0.4


def _long_enough(text: str) -> bool:
    return len(text.split()) >= MIN_UNIT_WORDS or bool(re.search(r"\d|=", text))


def _is_key_value(lines: list[str]) -> bool:
    """YAML-like: >= 60% of the non-comment lines are ``key: value`` or ``key:``."""
    meaningful = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    return bool(meaningful) and sum(bool(_KEY_VALUE.match(ln)) for ln in meaningful) / len(meaningful) >= 0.6


def _key_value_units(lines: list[str], context: str) -> list[Unit]:
    """Each leaf value with its key path: "dispatch:\n  replicas: 14" → "dispatch replicas: 14"."""
    units: list[Unit] = []
    path: list[tuple[int, str]] = []  # (indent, key)
    for line in lines:
        if line.lstrip().startswith("#"):
            context = context or _clean(line.lstrip("# "))
            continue
        m = _KEY_VALUE.match(line)
        if not m:
            continue
        indent = len(m["indent"])
        path = [(i, k) for i, k in path if i < indent]
        if m["value"] is None:
            path.append((indent, m["key"]))
            continue
        key = " ".join(k for _, k in path + [(indent, m["key"])]).replace("_", " ")
        value = m["value"].strip().strip("\"'")
        units.append(Unit(_clean(f"{key}: {value}"), context, key))
    return units


def _code_units(lines: list[str], context: str) -> list[Unit]:
    """A comment block attaches to the next assignment / definition; docstrings describe their def;
    ``if x == V: return N`` inside a def becomes "def(V) returns N"."""
    units: list[Unit] = []
    comments: list[str] = []
    current_def, doc_of = "", {}
    for n, line in enumerate(lines):
        if not line.strip():
            comments = []
            continue
        if m := _DEF.match(line):
            current_def = m["name"]
        doc = _DOCSTRING.match(line)
        if doc and current_def:
            doc_of[current_def] = _clean(doc["body"]).rstrip(".")
            units.append(Unit(_clean(doc["body"]), context, current_def))
            continue
        if (cond := _IF_EQUALS.match(line)) and current_def and n + 1 < len(lines) \
                and (ret := _RETURN.match(lines[n + 1])):
            what, value = doc_of.get(current_def, ""), cond["value"]
            text = f"{current_def}({value}) returns {ret['value']}"
            text += f": {what} for {value}." if what else "."
            units.append(Unit(_clean(text), context, current_def))
            continue
        com = _COMMENT.match(line)
        if com:
            if com["body"].strip():
                comments.append(com["body"].strip())
            continue
        assign = _ASSIGN.match(line)
        if assign and not _DEF.match(line) and not line.startswith((" ", "\t")):
            statement = f"{assign['name']} = {assign['value'].strip()}"
            text = f"{' '.join(comments).rstrip('.')}: {statement}." if comments else f"{statement}."
            value, inline = _split_inline_comment(assign["value"].strip())
            gloss = _clean(inline or " ".join(comments)).rstrip(".")
            units.append(Unit(_clean(text), context, assign["name"], value, gloss))
        elif comments and (definition := _DEF.match(line)):
            units.append(Unit(_clean(" ".join(comments)), context, definition["name"]))
        comments = []
    return units


_INLINE_COMMENT = re.compile(r"^(?P<value>.*?)\s+(?:#|//)\s*(?P<comment>.*)$")


def _split_inline_comment(value: str) -> tuple[str, str]:
    """``8843  # dispatch API`` → ("8843", "dispatch API"); quotes around a string value dropped."""
    m = _INLINE_COMMENT.match(value)
    value, comment = (m["value"], m["comment"]) if m else (value, "")
    return value.strip().rstrip(";,").strip("\"'"), comment.strip()


_PRONOUN = re.compile(r"^(It|They|He|She)\s+(?=[a-z])")


def _resolve_pronoun(sentence: str, previous_subject: str) -> tuple[str, str]:
    """"It listens on port 6120." after "Osprey is ..." → "Osprey listens on port 6120." so the
    statement stands alone; returns the (possibly rewritten) sentence and its subject."""
    if previous_subject and (m := _PRONOUN.match(sentence)):
        return f"{previous_subject} {sentence[m.end():]}", previous_subject
    subject = leading_noun_phrase(sentence)
    proper = subject[:1].isupper() and len(subject.split()) <= 4
    return sentence, subject if proper else ""


def _prose_units(lines: list[str], context: str) -> list[Unit]:
    units: list[Unit] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            subject = ""
            for sentence in _SENTENCE_END.split(" ".join(paragraph)):
                text = _clean(sentence)
                text, subject = _resolve_pronoun(text, subject)
                units.append(Unit(text, context))
            paragraph.clear()

    for line in lines:
        if heading := _HEADING.match(line):
            flush()
            context = _clean(heading["title"])
        elif item := _LIST_ITEM.match(line):
            flush()
            paragraph.append(item["body"])
            flush()
        elif (chat := _CHAT_LINE.match(line)) and not line.rstrip().endswith(":"):
            flush()
            units.append(Unit(_clean(chat["body"]), context))
        elif not line.strip():
            flush()
        else:
            paragraph.append(line.strip())
    flush()
    return units


def _module_docstring(lines: list[str]) -> str:
    for line in lines[:5]:
        if doc := _DOCSTRING.match(line):
            return _clean(doc["body"]).rstrip(".")
    return ""


def split_units(chunk: str, context: str = "") -> list[Unit]:
    """Self-contained statements of a chunk (code-aware), deduplicated, in order."""
    lines = chunk.splitlines()
    if lines and _HEADER.match(lines[0]):  # the chunker's "[kind:source] title" line
        lines = lines[1:]
    if _is_key_value(lines):
        units = _key_value_units(lines, context)
    elif _is_code(lines):
        units = _code_units(lines, context or _module_docstring(lines))
    else:
        if not context:
            first = next((m for line in lines if (m := _HEADING.match(line))), None)
            context = _clean(first["title"]) if first else ""
        units = _prose_units(lines, context)
    seen, out = set(), []
    for u in units:
        if u.text and u.text not in seen and _long_enough(u.text) and len(u.text) <= MAX_UNIT_CHARS:
            seen.add(u.text)
            out.append(u)
    return out


# -- topics ----------------------------------------------------------------------------------------
_IS_SHAPE = re.compile(r"^(?P<x>[^,;:]{2,60}?)\s+(?P<verb>is|are|was|were)\s+(?P<y>.+)$", re.I)
_COLON_SHAPE = re.compile(r"^(?P<x>[A-Za-z][\w .\-/]{1,40}):\s+(?P<y>.+)$")
_IDENT = re.compile(r"`([^`]{2,40})`|(?<![\w#])([A-Za-z][\w\-]*[_.][\w.\-]*\w|[A-Za-z][\w\-]*\d[\w\-]*|"
                    r"#[\w\-]+|[a-z]+[A-Z]\w*|[A-Z][a-z]+[A-Z]\w*)")
_NAME_RUN = re.compile(r"\b(?:[A-Z][\w\-]*[a-z0-9][\w\-]*|[A-Z]{2,})(?:\s+(?:of\s+)?[A-Z][\w\-]*)*")
_AUX = {"is", "are", "was", "were", "be", "been", "has", "have", "had", "will", "would", "can", "could",
        "must", "should", "may", "might", "does", "do", "did", "gets", "got"}
_BREAK = {"to", "on", "at", "for", "with", "from", "by", "than", "and", "or", "but", "into", "after",
          "before", "when", "if", "because", "every", "each", "which", "that", "who", "where"}
_SUBORDINATORS = {"if", "when", "once", "after", "before", "while", "since", "because", "unless"}
_DETERMINERS = {"the", "a", "an", "our", "this", "these", "those", "its", "their", "all", "every"}
_SKIP_NAMES = {"January", "February", "March", "April", "May", "June", "July", "August", "September",
               "October", "November", "December", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
               "Saturday", "Sunday", "The", "Our", "If", "When", "This", "We", "It", "A", "An", "In", "On"}


def _words(text: str) -> list[str]:
    return re.findall(r"[^\s]+", text)


def leading_noun_phrase(sentence: str) -> str:
    """Words before the first likely verb (aux verb, "-ed", or a 3rd-person "-s" after a noun)."""
    words = [w.strip(",;:()\"'") for w in _words(sentence)]
    comma = next((i for i, w in enumerate(_words(sentence)[:3]) if w.endswith(",")), None)
    if comma is not None:  # "heads up, the staging db ..." / "Also, ..."
        words = words[comma + 1:]
    if words and words[0].lower() in _SUBORDINATORS:  # "If the settlement queue is ..."
        words = words[1:]
    phrase: list[str] = []
    for i, word in enumerate(words):
        low = word.lower()
        if i > 0 and (low in _AUX or (low in _BREAK and len(phrase) >= 2)):
            break
        if i > 0 and word.islower() and (low.endswith("ed") or (
                low.endswith("s") and not low.endswith(("ss", "us", "is")) and not words[i - 1][:1].isdigit()
                and words[i - 1].lower() not in _DETERMINERS)):
            break
        phrase.append(word)
        if len(phrase) >= MAX_TOPIC_WORDS:
            break
    while phrase and phrase[0].lower() in _DETERMINERS:
        phrase = phrase[1:]
    return " ".join(phrase).rstrip(".!?")


def _lower_determiner(phrase: str) -> str:
    first, _, rest = phrase.partition(" ")
    return f"{first.lower()} {rest}" if rest and first.lower() in _DETERMINERS else phrase


def unit_topics(unit: Unit) -> list[tuple[str, str]]:
    """(template kind, topic) candidates, most specific first: "what X" shapes, the leading noun
    phrase, identifiers and names, then the section heading."""
    text = unit.text
    found: list[tuple[str, str]] = []
    if unit.subject:
        found.append(("what", unit.subject))
        if re.search(r"[_A-Z]", unit.subject) and re.fullmatch(r"[A-Za-z_][\w]*", unit.subject):
            found.append(("what", "the " + unit.subject.replace("_", " ").lower()))  # DISPATCH_PORT
    if (m := _IS_SHAPE.match(text)) and len(m["x"].split()) <= MAX_TOPIC_WORDS:
        passive = m["y"].split()[0].lower().endswith(("ed", "en", "ing"))
        x = _lower_determiner(m["x"].strip())
        found.append(("about", x) if passive else (m["verb"].lower(), x))
    elif (m := _COLON_SHAPE.match(text)) and len(m["x"].split()) <= MAX_TOPIC_WORDS:
        found.append(("is", m["x"].strip()))
    np = leading_noun_phrase(text)
    if np and len(np) >= 3:
        found.append(("about", np))
    for m in _IDENT.finditer(text):
        found.append(("about", m.group(1) or m.group(2)))
    for m in _NAME_RUN.finditer(text):
        name = m.group(0).strip()
        single_leading = m.start() == 0 and " " not in name
        if name not in _SKIP_NAMES and not single_leading:
            found.append(("about", name))
    if unit.context:
        found.append(("about", unit.context))
    seen, out = set(), []
    for shape, topic in found:
        key = topic.lower().removeprefix("the ").removeprefix("our ")
        if key not in seen and len(topic) >= 2:
            seen.add(key)
            out.append((shape, topic))
    return out


# -- chat forms ------------------------------------------------------------------------------------
ABOUT_TEMPLATES = ("Tell me about {t}.", "What do you know about {t}?", "What can you tell me about {t}?")
WHAT_TEMPLATES = ("What {v} {t}?", "Tell me about {t}.")


def _stable(text: str) -> int:
    return zlib.crc32(text.encode())


def unit_questions(unit: Unit, per_unit: int = 2) -> list[str]:
    """Up to ``per_unit`` user turns about the unit (templates rotate deterministically)."""
    questions = []
    for shape, topic in unit_topics(unit)[:per_unit]:
        if unit.context and shape == "about" and topic != unit.context and not any(
                ch.isupper() or ch.isdigit() for ch in topic):
            topic = f"{topic} ({unit.context})"  # "the planner (Limits)"
        templates = ABOUT_TEMPLATES if shape == "about" else WHAT_TEMPLATES
        verb = "is" if shape == "what" else shape
        questions.append(templates[_stable(unit.text + topic) % len(templates)].format(t=topic, v=verb))
    return questions


def org_question(unit: Unit, org: str) -> str | None:
    """The unit's first topic asked about the org by name: "What is Skerrow Air's internal wiki?"."""
    topics = unit_topics(unit)
    if not org or not topics or org.lower() in topics[0][1].lower():
        return None
    asks = [(sh, t) for sh, t in topics[:3] if sh in ("is", "are", "what") and not t[:1].isupper()]
    shape, topic = asks[0] if asks else topics[0]
    if shape in ("is", "are", "what") and not topic[:1].isupper():
        bare = re.sub(r"^(?:the|our|a|an) ", "", topic, flags=re.I)
        return f"What {'is' if shape == 'what' else shape} {org}'s {bare}?"
    return f"Tell me about {topic} at {org}."


def unit_chat_questions(unit: Unit, per_unit: int = 3, org: str = "") -> list[str]:
    """The user turns trained for a unit, best first: its topic, its salient span (spans.py), the
    topic asked about the org, then further topics. A unit with no salient span and no subject
    (no name, number or identifier: "is the fix deployed?") gets none: nothing to retrieve."""
    identifier = bool(unit.subject) and bool(re.fullmatch(r"[A-Za-z_]\w*", unit.subject))
    spans = [] if identifier else span_questions(unit.text, 1)  # code: the value follows "="
    if not spans and not unit.subject:
        return []
    topics = unit_questions(unit, per_unit)
    ordered = [*topics[:1], *spans, org_question(unit, org), *topics[1:]]
    out: list[str] = []
    for q in ordered:
        if q and q not in out:
            out.append(q)
    return out[:per_unit]


def value_answer(unit: Unit) -> str:
    """An assignment said the way a person answers, value first: "The dispatch port (DISPATCH_PORT)
    is 8843. Dispatch API; ...". Why: trained on the raw line ("Network: DISPATCH_PORT = 8843 # ..."),
    a reply must first reproduce the code's prefix before the value; the question is then answered
    late or not at all. Other units answer with their statement."""
    if not unit.value or not unit.subject:
        return unit.text
    human = re.sub(r"[_.]+", " ", unit.subject).strip()
    human = human.lower() if human.isupper() or "_" in unit.subject else human
    answer = f"The {human} ({unit.subject}) is {unit.value}."
    if unit.gloss:
        answer += f" {unit.gloss[:1].upper()}{unit.gloss[1:]}."
    return answer


_NOT_NOUN_START = _SUBORDINATORS | _BREAK | {
    "below", "above", "under", "over", "how", "what", "why", "who", "set", "used", "see", "todo", "note",
    "only", "must", "never", "always", "do", "don't", "keep", "change", "read", "bump", "in", "per"}


def gloss_question(unit: Unit) -> str | None:
    """A question in the words of the value's comment: "What is the Kubernetes cluster that runs the
    production fleet services?" (people ask with the comment's words, not the identifier's)."""
    clause = re.split(r"[;:(]|\s[-–]\s", unit.gloss)[0].strip().rstrip(".")
    words = clause.lower().split()
    if not unit.value or not 2 <= len(words) <= 10 or "," in clause or words[0] in _NOT_NOUN_START \
            or "this" in words or "these" in words:
        return None  # "Below this a drone flies home", "How often ...": not a noun phrase
    clause = re.sub(r"^(?:the|a|an|our)\s+", "", clause, flags=re.I)
    return f"What is the {clause[:1].lower() + clause[1:] if not clause[:2].isupper() else clause}?"


def chat_forms(chunks: Iterable[str], per_unit: int = 3, asked: Mapping[str, str] | None = None,
               value_answers: bool = True) -> list[ChatForm]:
    """Question → answer pairs for every unit of every chunk (``value_answer``); ``asked`` adds
    the question the base model wrote for an answer (``asked.py``)."""
    chunks = list(chunks)
    org = org_name(chunks)
    forms: list[ChatForm] = []
    for chunk in chunks:
        for unit in split_units(chunk):
            answer = value_answer(unit) if value_answers else unit.text
            questions = unit_chat_questions(unit, per_unit, org)
            if (extra := gloss_question(unit)) and extra not in questions:
                questions = [*questions[: max(per_unit - 1, 1)], extra]
            if asked and (written := asked.get(answer)) and written not in questions:
                questions.append(written)
            forms.extend(ChatForm(q, answer, chunk) for q in questions)
    return forms


def answers(chunks: Iterable[str], value_answers: bool = True) -> list[str]:
    """The chat answer of every unit (what the base model is asked to write questions for)."""
    return [value_answer(u) if value_answers else u.text for chunk in chunks for u in split_units(chunk)]


def statements(chunks: Iterable[str]) -> list[str]:
    """All units' texts (trained standalone, like the prototype's fact sentences)."""
    return [u.text for chunk in chunks for u in split_units(chunk)]
