"""Which words of an answer carry its value: what a correction changed, and what to look for.

"The dispatch port is 8843." corrected to "The dispatch port is 7720." changes ``8843`` into
``7720``; the shared words say what the fact is about. Lexical on purpose (no model): the same
rule finds conflicting documents at proposal time and checks answers in the gate report.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]*[A-Za-z0-9]|[A-Za-z0-9]")
STOPWORDS = frozenset(
    "a an the is are was were be been of to in on at for by with from and or not no it its this that "
    "these those what which who whom when where why how does do did our we you your i me my he she they "
    "them their there here as than then so if can could should would will shall may might must has have "
    "had about into over under per each every any all some tell please now".split()
)


def words(text: str) -> list[str]:
    """Lowercased words and numbers (``8843``, ``16:40``, ``heronctl``), trailing dots dropped."""
    return [w.lower().rstrip(".:") for w in _WORD.findall(text)]


def content_words(text: str) -> set[str]:
    """Words that say what a question is about: no stopwords, at least 3 characters or a number."""
    return {w for w in words(text) if w not in STOPWORDS and (len(w) >= 3 or w.isdigit())}


def changed_values(old: str, new: str, question: str = "") -> tuple[set[str], set[str]]:
    """``(old only, new only)``: the content words only the old answer has, and only the new one,
    neither repeating the question (its words name the fact, not its value)."""
    asked = content_words(question)
    old_words, new_words = content_words(old) - asked, content_words(new) - asked
    return old_words - new_words, new_words - old_words


def says(text: str, values: set[str]) -> bool:
    """Every one of ``values`` appears in ``text`` as a word (an empty set is never said)."""
    if not values:
        return False
    present = set(words(text))
    return values <= present


def says_any(text: str, values: set[str]) -> bool:
    return bool(values & set(words(text)))
