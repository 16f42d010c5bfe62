"""Secrets recognised by their context rather than a key name: the password in a URL's userinfo
(``postgres://app:pw@db``, ``redis://:pw@cache``, ``https://user:pw@host``), the credential in an
``Authorization:`` header or after ``Bearer``, ``curl -u user:pw``, and an AWS secret access key
beside its key id ("AKIA… / <40 chars>") wherever it sits on the line or the next one.

Each rule returns the secret's span only, so user names, hosts and the sentence around stay.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator

from orgmem.governance.values import MIN_VALUE_LEN, is_reference

CREDENTIAL_RULES_VERSION = "orgmem-cred-1"

URL_USERINFO = re.compile(
    r"\b[A-Za-z][A-Za-z0-9+.\-]*://(?P<user>[^\s:/@'\"<>`]*):(?P<value>[^\s/'\"<>`]+)@(?P<host>[^\s/@'\"<>`?#]+)"
)
AUTH_HEADER = re.compile(
    r"(?i)\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?"
    r"(?:bearer|basic|token|digest|bot|apikey|sso-key|key|otp)\s+(?P<value>[^\s\"',;]+)"
)
BEARER = re.compile(r"\bBearer\s+(?P<value>[A-Za-z0-9\-._~+/]{12,}=*)")
CURL_USER = re.compile(r"(?:\s-u\s*|\s--user[=\s])[\"']?(?P<user>[^\s:\"'`]+):(?P<value>[^\s\"'`,;]+)")
AWS_KEY_ID = re.compile(r"(?<![A-Z0-9])(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])")
AWS_SECRET_SHAPE = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
AWS_WINDOW_CHARS = 300  # how far around a key id its secret may sit ("AKIA… / …", the next line)
MIN_AWS_SECRET_ENTROPY = 3.5  # bits per char; random base64 has ~5, a word-like string < 3.5


def shannon_entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def _looks_random(value: str) -> bool:
    """Not a word, path or hex digest: upper, lower and digit mixed, high entropy."""
    classes = sum(bool(re.search(p, value)) for p in ("[a-z]", "[A-Z]", "[0-9]"))
    hex_only = re.fullmatch(r"[0-9a-fA-F]+", value) is not None
    return classes == 3 and not hex_only and shannon_entropy(value) >= MIN_AWS_SECRET_ENTROPY


def _aws_pairs(text: str) -> Iterator[tuple[str, int, int]]:
    for key_id in AWS_KEY_ID.finditer(text):
        line_start = text.rfind("\n", 0, key_id.start()) + 1
        start = max(line_start, key_id.start() - AWS_WINDOW_CHARS)
        end = key_id.end() + AWS_WINDOW_CHARS
        for candidate in AWS_SECRET_SHAPE.finditer(text, start, min(len(text), end)):
            if _looks_random(candidate.group()):
                yield "aws-secret-key", candidate.start(), candidate.end()


def _plain_secret(value: str) -> bool:
    return len(value) >= MIN_VALUE_LEN and not is_reference(value)


def _bearer_like(value: str) -> bool:
    return not is_reference(value) and bool(
        re.search(r"\d", value) or re.search(r"[A-Z].*[a-z]|[a-z].*[A-Z]", value)
    )


def credential_findings(text: str) -> Iterator[tuple[str, int, int]]:
    """(kind, start, end) of every contextual credential in ``text``."""
    if "://" in text:
        for match in URL_USERINFO.finditer(text):
            if _plain_secret(match["value"]) and match["value"] != match["user"]:
                yield "url-password", match.start("value"), match.end("value")
    for pattern, kind in ((AUTH_HEADER, "authorization"), (BEARER, "bearer-token"), (CURL_USER, "password")):
        for match in pattern.finditer(text):
            if _bearer_like(match["value"]) or (pattern is CURL_USER and _plain_secret(match["value"])):
                yield kind, match.start("value"), match.end("value")
    if "A" in text:
        yield from _aws_pairs(text)


def rule_names() -> list[str]:
    return [
        f"orgmem:credential:{name}"
        for name in ("authorization", "aws-secret-beside-key-id", "bearer-token", "curl-user", "url-password")
    ]
