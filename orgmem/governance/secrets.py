"""Find secrets in text: detect-secrets' maintained plugins, token shapes it lacks, keyword assignments in
every syntax (``assignments``) and contextual credentials (``credentials``: URL passwords, auth headers,
the AWS secret beside its key id).

We call the plugins' ``analyze_string`` directly instead of going through detect-secrets' global
settings and scan functions: that keeps the scan thread-safe and free of its network
verification, and lets us run the token-shaped detectors once over the whole text (fast) while
keyword and high-entropy detectors, which need a line's context, only see lines that could match.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from detect_secrets.__version__ import VERSION as DETECT_SECRETS_VERSION
from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.filters import heuristic
from detect_secrets.plugins.base import BasePlugin, RegexBasedDetector
from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin
from detect_secrets.plugins.keyword import (
    CONFIG_DENYLIST_REGEX_TO_GROUP,
    QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP,
    REGEX_BY_FILETYPE,
    KeywordDetector,
)
from detect_secrets.plugins.private_key import PrivateKeyDetector
from detect_secrets.util.filetype import determine_file_type

from orgmem.governance import assignments, credentials
from orgmem.governance.values import is_reference

CLOUD_RULES_VERSION = "orgmem-cloud-2"
# Bump a part when its rules change: the rule-set version recorded on checkpoints changes with it.
RULESET = (
    f"detect-secrets=={DETECT_SECRETS_VERSION}+{CLOUD_RULES_VERSION}"
    f"+{assignments.ASSIGNMENT_RULES_VERSION}+{credentials.CREDENTIAL_RULES_VERSION}"
)

# Detectors left out: public IPs are not secrets; entropy/keyword/private-key are handled specially below.
_EXCLUDED = {"IPPublicDetector"}

# Key shapes detect-secrets does not cover (or only when quoted). Group 1, when present, is the secret.
CLOUD_PATTERNS: dict[str, re.Pattern[str]] = {
    "aws-secret-key": re.compile(
        r"(?i)aws_?secret_?(?:access_?)?key[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"
    ),
    "gcp-api-key": re.compile(r"\bAIza[0-9A-Za-z\-_]{35}(?![0-9A-Za-z\-_])"),
    "gcp-oauth-secret": re.compile(r"\bGOCSPX-[A-Za-z0-9_\-]{28}"),
    "azure-account-key": re.compile(r"(?i)(?:AccountKey|SharedAccessKey)=([A-Za-z0-9+/=]{20,})"),
    "huggingface-token": re.compile(r"\bhf_[A-Za-z0-9]{34}\b"),
    "anthropic-key": re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{20,}"),
    "slack-token": re.compile(
        r"\bxapp-\d-[A-Z0-9]+-\d+-[a-f0-9]+|\bxoxe\.xox[bp]-\d-[A-Za-z0-9]+|\bxox[abposr]-[A-Za-z0-9-]{10,}"
    ),
    "stripe-key": re.compile(r"\b(?:sk|rk)_(?:test|live)_[0-9a-zA-Z]{24,}|\bwhsec_[0-9a-zA-Z]{32,}"),
    "digitalocean-token": re.compile(r"\bdo[opr]_v1_[a-f0-9]{64}\b"),
    "gitlab-token": re.compile(
        r"\bgl(?:pat|dt|rt|ptt|ft|soat|cbt|imt|agent|oas)-[0-9A-Za-z_\-]{20,}|\bGR1348941[0-9A-Za-z_\-]{20,}"
    ),
    "github-token": re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,}|\bgh[pousr]_[A-Za-z0-9]{30,}"),
    "openai-key": re.compile(r"\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}|\bsk-[A-Za-z0-9]{40,}\b"),
    "npm-token": re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"),
    "shopify-token": re.compile(r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b"),
    "databricks-token": re.compile(r"\bdapi[a-f0-9]{32}(?:-\d)?\b"),
    "vault-token": re.compile(r"\bhv[sbr]\.[A-Za-z0-9_\-]{24,}"),
    "age-secret-key": re.compile(r"\bAGE-SECRET-KEY-1[0-9A-Z]{58}\b"),
    "linear-key": re.compile(r"\blin_api_[A-Za-z0-9]{40}\b"),
    "grafana-token": re.compile(r"\bglsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}\b|\bglc_[A-Za-z0-9+/]{32,}={0,2}"),
    "notion-token": re.compile(r"\bntn_[0-9]{11}[A-Za-z0-9]{35}\b"),
    "postman-key": re.compile(r"\bPMAK-[a-f0-9]{24}-[a-f0-9]{34}\b"),
    "doppler-token": re.compile(r"\bdp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,}"),
    "sentry-token": re.compile(r"\bsntry[su]_[A-Za-z0-9_=+/]{40,}"),
}
PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
    r"(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)"
    r"|---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----[\s\S]*?(?:---- END SSH2 ENCRYPTED PRIVATE KEY ----|\Z)"
    r"|PuTTY-User-Key-File-\d[\s\S]*?(?:Private-MAC: \S+|\Z)"
)

_KEYWORD_HINT = re.compile(r"(?i)key|pass|pwd|secret|contrase")
_ASSIGNMENT_HINT = re.compile(r"[=:]\s*['\"]|['\"]\s*[,)]")
_TRIVIAL_VALUES = {"true", "false", "null", "none", "yes", "no", "changeme", "password", "secret", "example"}
_MIN_GENERIC_LEN = 6  # shorter keyword/entropy hits are almost always placeholders


@dataclass(frozen=True)
class Finding:
    """A span [start, end) of the original text that holds a secret of kind ``rule``."""

    rule: str
    start: int
    end: int


def rule_name(secret_type: str, value: str = "") -> str:
    """detect-secrets' secret type → a short slug used in placeholders ("AWS Access Key" → aws-access-key)."""
    aws_key = secret_type == "AWS Access Key"  # nosec B105  # a detector's name, not a password
    if aws_key and not re.match(r"(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)", value):
        return "aws-secret-key"
    special = {
        "Base64 High Entropy String": "high-entropy-string",
        "Hex High Entropy String": "high-entropy-string",
        "JSON Web Token": "jwt",
        "Secret Keyword": "secret-keyword",
    }
    return special.get(secret_type) or re.sub(r"[^a-z0-9]+", "-", secret_type.lower()).strip("-")


@lru_cache(maxsize=1)
def _plugins() -> tuple[list[RegexBasedDetector], KeywordDetector, list[HighEntropyStringsPlugin]]:
    token_shaped: list[RegexBasedDetector] = []
    entropy: list[HighEntropyStringsPlugin] = []
    classes: list[type[Any]] = list(get_mapping_from_secret_type_to_class().values())
    for cls in classes:
        if cls.__name__ in _EXCLUDED or cls in (KeywordDetector, PrivateKeyDetector):
            continue
        plugin = cls()
        (entropy if isinstance(plugin, HighEntropyStringsPlugin) else token_shaped).append(plugin)
    return token_shaped, KeywordDetector(), entropy


def plugin_names() -> list[str]:
    """Names of every rule in the rule set (recorded with redactions so audits know what ran)."""
    token_shaped, keyword, entropy = _plugins()
    detectors = [type(p).__name__ for p in [*token_shaped, keyword, *entropy]] + ["PrivateKeyDetector"]
    ours = [f"orgmem:{name}" for name in sorted(CLOUD_PATTERNS)]
    return sorted(detectors) + ours + assignments.rule_names() + credentials.rule_names()


def _all_occurrences(text: str, value: str, rule: str) -> Iterator[Finding]:
    """Every place ``value`` appears (the same secret pasted twice is redacted twice)."""
    start = text.find(value)
    while start != -1:
        yield Finding(rule, start, start + len(value))
        start = text.find(value, start + len(value))


def _is_placeholder(value: str, line: str, plugin: BasePlugin) -> bool:
    """detect-secrets' false-positive heuristics, plus our own minimum length and trivial words."""
    return (
        len(value) < _MIN_GENERIC_LEN
        or value.lower() in _TRIVIAL_VALUES
        or heuristic.is_sequential_string(value)
        or heuristic.is_potential_uuid(value)
        or heuristic.is_likely_id_string(value, line, plugin)
        or heuristic.is_templated_secret(value)
        or heuristic.is_prefixed_with_dollar_sign(value)
        or heuristic.is_not_alphanumeric_string(value)
        or value.startswith("[REDACTED:")
    )


_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_\-+/=.]*")
_EDGE_CHARS = " \t\r\n\"'`=:,."


def _token_span(text: str, match: re.Match[str]) -> tuple[int, int]:
    """The secret's span in a detector match: a long capture group (the value after a keyword) when
    there is one, else the whole match, trimmed of separators and extended to the end of the token
    (some detectors match lazily and would leave a tail, e.g. a JWT signature, in clear)."""
    groups = [i for i in range(1, (match.re.groups or 0) + 1) if match.group(i)]
    best = max(groups, key=lambda i: len(match.group(i)), default=0)
    use_group = best and (len(match.group(best)) >= 16 or match.start(best) > match.start())
    start, end = match.span(best if use_group else 0)
    while start < end and text[start] in _EDGE_CHARS:
        start += 1
    while end > start and text[end - 1] in _EDGE_CHARS:
        end -= 1
    extend = text[end - 1 : end].isalnum()
    tail = _TOKEN_CHARS.match(text, end) if extend else None
    end = tail.end() if tail else end
    while end > start and text[end - 1] == ".":
        end -= 1
    return start, end


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """(offset, line) pairs of ``text``."""
    offset = 0
    for line in text.split("\n"):
        yield offset, line
        offset += len(line) + 1


# Every token-shaped detector needs a long token (or a user:password@ URL) on the line: lines
# without one are not worth running ~40 regexes over. This keeps the scan at several MB/s.
_TOKEN_GATE = re.compile(r"[A-Za-z0-9_\-+/=.]{20,}|://[^\s/]+@")


def _token_findings(text: str) -> Iterator[Finding]:
    token_shaped, _, _ = _plugins()
    patterns = [(p.secret_type, pattern) for p in token_shaped for pattern in p.denylist]
    for offset, line in _lines(text):
        if not _TOKEN_GATE.search(line):
            continue
        for secret_type, pattern in patterns:
            for match in pattern.finditer(line):
                start, end = _token_span(line, match)
                value = line[start:end]
                if secret_type == "Basic Auth Credentials" and is_reference(value):  # nosec B105  # a name
                    continue  # scheme://user:${DB_PASS}@host, user:PASSWORD@host: a placeholder
                if value and not heuristic.is_sequential_string(value):
                    yield Finding(rule_name(secret_type, value), offset + start, offset + end)
        for rule, pattern in CLOUD_PATTERNS.items():
            for match in pattern.finditer(line):
                group = 1 if pattern.groups and match.group(1) else 0
                yield Finding(rule, offset + match.start(group), offset + match.end(group))
    if PrivateKeyDetector().analyze_string(text):
        for match in PRIVATE_KEY_BLOCK.finditer(text):
            yield Finding("private-key", match.start(), match.end())


_CONFIG_NAMES = re.compile(r"(?:^|/)(?:\.env(?:\.[\w.-]+)?|\.envrc|[^/]*\.(?:env|sh|bash|zsh))$")


def _keyword_regex(path: str) -> dict[re.Pattern[str], int]:
    """detect-secrets' keyword rules by file type; env files and shell scripts count as config (no quotes)."""
    if _CONFIG_NAMES.search(path):
        return CONFIG_DENYLIST_REGEX_TO_GROUP
    return REGEX_BY_FILETYPE.get(
        determine_file_type(path or "x.txt"), QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP
    )


def _first_token(value: str, line: str) -> str:
    """detect-secrets' config rules take the rest of the line as the value (``PW=x mysql -u root``):
    keep the first token unless the value was quoted whole, so the command after it stays."""
    if not any(c.isspace() for c in value) or any(f"{q}{value}{q}" in line for q in "\"'`"):
        return value
    return value.split()[0]


def _named_look_alike(value: str, line: str) -> bool:
    """A keyword hit our assignment policy keeps: a reference (``vault:...``, ``${X}``) or the value of
    a key that is not secret-named (``api_key_header``, ``secret_name``)."""
    at = line.find(value)
    return is_reference(value) or (at >= 0 and assignments.key_before_names_no_secret(line, at))


def _assignment_findings(text: str, path: str) -> Iterator[Finding]:
    for offset, line in _lines(text):
        for kind, start, end in assignments.assignment_findings(line, path):
            yield Finding(kind, offset + start, offset + end)


def _line_findings(text: str, path: str) -> Iterator[Finding]:
    """Keyword (password = "...") and high-entropy string hits, restricted to the line they are on."""
    _, keyword, entropy = _plugins()
    keyword_regex = _keyword_regex(path)
    for offset, line in _lines(text):
        if _KEYWORD_HINT.search(line) and not heuristic.is_indirect_reference(line):
            for value in keyword.analyze_string(line, denylist_regex_to_group=keyword_regex):
                value = _first_token(value, line)
                if value and not _is_placeholder(value, line, keyword) and not _named_look_alike(value, line):
                    yield from (
                        Finding("secret-keyword", offset + f.start, offset + f.end)
                        for f in _all_occurrences(line, value, "")
                    )
        if _ASSIGNMENT_HINT.search(line):
            for plugin in entropy:
                for value in plugin.analyze_string(line):
                    if (
                        plugin.calculate_shannon_entropy(value) > plugin.entropy_limit
                        and not _is_placeholder(value, line, plugin)
                        and len(value) >= 16
                    ):
                        yield from (
                            Finding("high-entropy-string", offset + f.start, offset + f.end)
                            for f in _all_occurrences(line, value, "")
                        )


def find_secrets(text: str, path: str = "") -> list[Finding]:
    """Every secret span in ``text`` (possibly overlapping); ``path`` tunes keyword rules by file type."""
    contextual = (Finding(kind, start, end) for kind, start, end in credentials.credential_findings(text))
    # order matters on ties: merge() keeps the first of equal spans, so specific detectors name the kind
    return [
        *_token_findings(text),
        *contextual,
        *_assignment_findings(text, path),
        *_line_findings(text, path),
    ]
