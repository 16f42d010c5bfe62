"""Apply governance to one document: replace secrets (and opted-in PII) by typed placeholders.

The result carries redaction records — rule, start, end and line in the ORIGINAL text, placeholder —
and never the secret itself. Only the value is replaced: the line and the rest of the document stay.
A document is skipped only when it is nothing but secrets: a key file by name (id_rsa, .pem), or a
text with no letter or digit left outside its placeholders (a pasted private key). One secret line,
however long, never drops the ordinary text around it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from orgmem.governance.pii import find_pii
from orgmem.governance.secrets import RULESET, Finding, find_secrets

SECRET_FILE_NAMES = frozenset(
    {
        "id_rsa",
        "id_dsa",
        "id_ecdsa",
        "id_ed25519",
        ".netrc",
        ".pgpass",
        ".htpasswd",
        "credentials",
        ".git-credentials",
    }
)
SECRET_FILE_SUFFIXES = frozenset({".pem", ".key", ".p12", ".pfx", ".jks", ".keystore", ".ppk", ".der", ".p8"})
_PLACEHOLDER = re.compile(r"\[REDACTED:[a-z0-9:-]+\]")
_ORDINARY = re.compile(r"[^\W_]")  # a letter or digit: something left to learn


@dataclass(frozen=True)
class GovernancePolicy:
    """What to redact beyond secrets (always on)."""

    pii: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Redaction:
    """Where a secret was (offsets and 1-based line in the original text) and what replaced it."""

    rule: str
    start: int
    end: int
    placeholder: str
    line: int = 0


@dataclass
class GovernedText:
    """Text safe to store, its redaction records, and a skip reason when nothing should be stored."""

    text: str
    redactions: list[Redaction] = field(default_factory=list)
    skip_reason: str | None = None
    ruleset: str = RULESET

    def findings(self) -> list[dict[str, int | str]]:
        """Kind and line of each redaction, for the version's metadata: never the value."""
        return [{"rule": r.rule, "line": r.line} for r in self.redactions]


def placeholder(rule: str) -> str:
    return f"[REDACTED:{rule}]"


def is_secret_file(path: str) -> bool:
    """Key/credential files by name: the whole file is the secret."""
    name = PurePosixPath(path).name.lower()
    return name in SECRET_FILE_NAMES or PurePosixPath(name).suffix in SECRET_FILE_SUFFIXES


def merge(findings: list[Finding]) -> list[Finding]:
    """Non-overlapping spans in order; overlapping hits merge and keep the widest hit's rule."""
    merged: list[Finding] = []
    for f in sorted(findings, key=lambda f: (f.start, -(f.end - f.start))):
        if merged and f.start < merged[-1].end:
            last = merged[-1]
            merged[-1] = Finding(last.rule, last.start, max(last.end, f.end))
        else:
            merged.append(f)
    return merged


def govern(text: str, *, path: str = "", policy: GovernancePolicy | None = None) -> GovernedText:
    """Redact ``text``; ``path`` (file name or title) lets rules adapt to file type and names key files."""
    policy = policy or GovernancePolicy()
    if path and is_secret_file(path):
        return GovernedText(text="", skip_reason="secret-file")
    secrets = merge(find_secrets(text, path))
    spans = merge(secrets + list(find_pii(text, policy.pii))) if policy.pii else secrets
    if not spans:
        return GovernedText(text=text)
    pieces, redactions, cursor = [], [], 0
    line, line_cursor = 1, 0
    for span in spans:
        mark = placeholder(span.rule)
        pieces += [text[cursor : span.start], mark]
        line += text.count("\n", line_cursor, span.start)
        line_cursor = span.start
        redactions.append(Redaction(span.rule, span.start, span.end, mark, line))
        cursor = span.end
    pieces.append(text[cursor:])
    out = "".join(pieces)
    skip = None if _ORDINARY.search(_PLACEHOLDER.sub("", out)) else "secret-only"
    return GovernedText(text=out, redactions=redactions, skip_reason=skip)
