"""Opt-in PII rules (emails, phone numbers): plain patterns, enabled per source.

Kept deliberately conservative: phone numbers need separators or a leading '+' so version
numbers, dates and ids are not mistaken for them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from orgmem.governance.secrets import Finding

PII_PATTERNS: dict[str, re.Pattern[str]] = {
    "email": re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
    "phone": re.compile(
        r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}(?![\w-])"
    ),
}


def find_pii(text: str, kinds: frozenset[str]) -> Iterator[Finding]:
    """Spans of the requested PII kinds; unknown kinds raise naming the valid ones."""
    unknown = kinds - PII_PATTERNS.keys()
    if unknown:
        raise ValueError(f"unknown PII kinds {sorted(unknown)}; known: {sorted(PII_PATTERNS)}")
    for kind in sorted(kinds):
        for match in PII_PATTERNS[kind].finditer(text):
            yield Finding(kind, match.start(), match.end())
