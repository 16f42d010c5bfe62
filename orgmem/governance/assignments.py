"""Keyword assignments in every common syntax: the value of a secret-named key, and only the value.

detect-secrets' KeywordDetector needs quotes outside config files and takes the rest of the line
as the value in config files (``MYSQL_PWD=x mysql -u root`` lost the command). This layer finds
``<key> <separator> <value>`` in ini/env/toml (``password = x``, ``DB_PASSWORD=x``, ``export X=x``),
yaml (``password: x``), json (``"password": "x"``), code (``token := "x"``, ``pw => 'x'``), XML
(``<password>x</password>``), shell (``--password=x``, ``--password x``, ``mysql -p'x'``), SQL
(``IDENTIFIED BY 'x'``) and returns the span of the value, so the line and the document stay.

Whether a key is secret-named is decided on its words (``dbPassword`` → db, password): the last
secret word must not be followed by a metadata word, so ``password_policy``, ``PASSWORD_MIN_LENGTH``,
``api_key_header`` and ``max_tokens`` are not secrets. Values go through ``values.is_literal_secret``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from orgmem.governance.values import is_literal_secret

ASSIGNMENT_RULES_VERSION = "orgmem-assign-1"

# word → the kind shown in the placeholder
_SECRET_WORDS = {
    **dict.fromkeys(
        ["password", "passwd", "passphrase", "passcode", "pwd", "pw", "pass", "pword"], "password"
    ),
    **dict.fromkeys(["token", "accesstoken", "authtoken", "bearertoken", "apitoken"], "token"),
    **dict.fromkeys(["secret", "clientsecret", "apisecret", "credential", "credentials", "creds"], "secret"),
    **dict.fromkeys(["apikey", "accesskey", "secretkey", "privatekey", "signingkey", "masterkey"], "api-key"),
}
_SUBSTRING_WORDS = ("password", "passwd", "secret", "token", "apikey", "credential")  # pgpassword, apitoken
_KEY_QUALIFIERS = frozenset(
    "api access secret private auth encryption signing master client app account service webhook deploy "
    "license consumer storage shared hmac jwt crypto cipher aes gpg ssh admin root session subscription "
    "x".split()
)
# after the secret word, only these words keep the key secret-named (secret_key_base, token_value)
_TRAILING_OK = frozenset(
    "value base b64 base64 enc encoded raw plain plaintext literal hex str new old".split()
)
_LEADING_META = frozenset("max min num number count total expected reset forgot show hide".split())
_CODE_SUFFIXES = frozenset(
    ".py .pyi .js .jsx .mjs .cjs .ts .tsx .go .java .kt .kts .rs .rb .php .scala .swift .c .h .cpp .cc "
    ".hpp .cs .lua .pl .pm .ex .exs .dart .groovy .sql".split()
)

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_KEY = r"(?<![\w.])(?P<key>[A-Za-z_][A-Za-z0-9_.\-]*)(?P<kq>[\"']?)"
_VALUE = r"(?P<value>\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'|`[^`\n]*`|[^\s\"'`,;]+)"
ASSIGNMENT = re.compile(_KEY + r"[ \t]*(?P<sep>:=|=>|=|:)(?P<space>[ \t]*)" + _VALUE)
FLAG_SPACE = re.compile(r"(?<![\w-])--(?P<key>[A-Za-z][\w-]*)[ \t]+" + _VALUE)
MYSQL_P = re.compile(
    r"\b(?:mysql|mysqldump|mysqladmin|mariadb|mysqlsh)\b[^\n]*?\s-p(?P<value>'[^'\n]+'|\"[^\"\n]+\"|[^\s'\"-]\S*)"
)
XML = re.compile(r"<(?P<key>[\w:.-]+)>(?P<value>[^<\n]+)</(?P=key)>")
XML_KEY_VALUE = re.compile(r"\bkey=[\"'](?P<key>[\w:.-]+)[\"']\s+value=(?P<value>\"[^\"\n]*\"|'[^'\n]*')")
QUERY = re.compile(r"[?&](?P<key>[A-Za-z_][\w.\-]*)=(?P<value>[^&#;\s\"'<>]+)")
SQL = re.compile(
    r"(?i)\b(?:identified\s+by|with\s+(?:encrypted\s+)?password|password)\s+(?P<value>'[^'\n]+')"
)
_HINT = re.compile(r"(?i)pass|pwd|pw|secret|token|key|cred|identified|mysql|mariadb")
_KEY_BEFORE = re.compile(r"([A-Za-z_][\w.\-]*)[\"']?[ \t]*(?:==|!=|:=|=>|=|:)[ \t]*[\"'`]?$")
_COMMENT = re.compile(r"[ \t]+(?:#|//|;)")


def key_kind(key: str) -> str | None:
    """The secret kind a key names ("password", "token", "secret", "api-key"), or None."""
    words = [w.lower() for w in _WORD.findall(key)]
    for i in range(len(words) - 1, -1, -1):
        word = words[i]
        kind = _SECRET_WORDS.get(word)
        if kind is None and word == "key" and i and words[i - 1] in _KEY_QUALIFIERS:
            kind = "api-key"
        if kind is None and len(word) > 6:
            kind = next((_SECRET_WORDS[s] for s in _SUBSTRING_WORDS if s in word and word.endswith(s)), None)
        if kind is None:
            continue
        if all(w in _TRAILING_OK or w in _SECRET_WORDS or w == "key" for w in words[i + 1 :]) and not (
            _LEADING_META & set(words[:i])
        ):
            return kind
        return None
    return None


def key_before_names_no_secret(line: str, value_start: int) -> bool:
    """True when the key assigned just before ``value_start`` is recognisably not secret-named
    (``api_key_header = "X-Api-Key"``, ``secret_name: billing``): another detector's keyword hit there
    is a look-alike. False when there is no such key or it names a secret."""
    match = _KEY_BEFORE.search(line, 0, value_start)
    return match is not None and key_kind(match[1]) is None


def is_code_file(path: str) -> bool:
    return PurePosixPath(path.lower()).suffix in _CODE_SUFFIXES


def _unquote(line: str, start: int, end: int) -> tuple[int, int, bool]:
    if end - start >= 2 and line[start] in "\"'`" and line[end - 1] == line[start]:
        return start + 1, end - 1, True
    return start, end, False


def _trim_closers(value: str) -> int:
    """Length of ``value`` without trailing brackets it does not open (``{password: abc}``)."""
    end = len(value)
    for close, opening in ((")", "("), ("]", "["), ("}", "{"), (">", "<")):
        while end and value[end - 1] == close and value[:end].count(close) > value[:end].count(opening):
            end -= 1
    return end


def _prose_follows(line: str, end: int) -> bool:
    """More words after the value on this line, other than a comment."""
    rest = line[end:]
    return bool(rest.strip()) and not _COMMENT.match(rest) and rest[:1] in " \t"


def _value_span(
    line: str, match: re.Match[str], *, code_file: bool, key: str, spaced: bool
) -> tuple[int, int] | None:
    start, end = match.span("value")
    start, end, quoted = _unquote(line, start, end)
    if not quoted:
        end = start + _trim_closers(line[start:end])
    value = line[start:end]
    prose = spaced and not quoted and _prose_follows(line, end)
    if is_literal_secret(value, key=key, quoted=quoted, code_file=code_file, prose_follows=prose):
        return start, end
    return None


def assignment_findings(line: str, path: str = "") -> Iterator[tuple[str, int, int]]:
    """(kind, start, end) of every secret value assigned to a secret-named key on ``line``."""
    if not _HINT.search(line):
        return
    code_file = is_code_file(path)
    pos = 0
    while match := ASSIGNMENT.search(line, pos):
        key, sep = match["key"], match["sep"]
        kind = key_kind(key)
        if kind is None or (sep == ":" and line[match.end("sep") : match.end("sep") + 2] == "//"):
            pos = match.start("value")  # the value may hold an assignment: ``environment: PW=x``
            continue
        pos = match.end()
        if line[match.start() - 1 : match.start()] in ("?", "&"):
            continue  # a URL query parameter: QUERY below stops its value at the next '&'
        # KEY=value with no spaces is a shell/env assignment: what follows is a command, not prose
        spaced = (
            bool(match["space"]) or sep == ":" or line[match.start("sep") - 1 : match.start("sep")] == " "
        )
        span = _value_span(line, match, code_file=code_file, key=key, spaced=spaced)
        if span:
            yield kind, *span
    for pattern in (FLAG_SPACE, XML, XML_KEY_VALUE, QUERY):
        for match in pattern.finditer(line):
            kind = key_kind(match["key"])
            if kind and not match["value"].startswith("-"):
                span = _value_span(line, match, code_file=False, key=match["key"], spaced=False)
                if span:
                    yield kind, *span
    for pattern in (MYSQL_P, SQL):
        for match in pattern.finditer(line):
            span = _value_span(line, match, code_file=False, key="", spaced=False)
            if span:
                yield "password", *span


def rule_names() -> list[str]:
    """The rules of this layer, recorded in the rule set."""
    return [f"orgmem:assignment:{kind}" for kind in sorted(set(_SECRET_WORDS.values()))] + [
        "orgmem:assignment:shell-flag",
        "orgmem:assignment:xml",
        "orgmem:assignment:sql",
    ]
