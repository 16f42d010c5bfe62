"""Which values after a secret-named key are literal secrets, and which are look-alikes that stay.

The policy (docs/security_secrets.md): a reference to a secret is not a secret. Environment and
template references (``${DB_PASSWORD}``, ``$TOKEN``, ``{{ vault.pw }}``, ``%(pw)s``), placeholders
(``<your-password>``, ``***``, ``changeme``, ``[REDACTED:...]``), type names (``password: str``),
code expressions (``os.environ["X"]``, ``settings.DB_PASSWORD``, ``get_token()``) and short numbers
are kept verbatim; everything else assigned to a secret-named key is redacted.
"""

from __future__ import annotations

import re

MIN_VALUE_LEN = 4  # "pass: yes", "pw: 1"; a real password is longer

_REFERENCE = re.compile(
    r"""\$\{[^}]*\}?            # ${VAR} / ${VAR:-default}
    | ^\$[A-Za-z_][A-Za-z0-9_]*$  # $VAR
    | ^\$\(.*\)?$               # $(cat /run/secrets/db)
    | \{\{.*?\}\}               # {{ jinja }} / {{ .Values.pw }}
    | \{%.*?%\}                 # {% template tag %}
    | ^%\(?[A-Za-z_]\w*\)?[sd]?$|^%[A-Za-z_]\w*%$  # %(pw)s, %PASSWORD%
    | ^\#\{[^}]*\}$             # #{ruby}
    | ^<[^<>]+>$                # <your-password>
    | ^\[[A-Za-z _:-]+\]$       # [password], [REDACTED:password]
    | ^\{[A-Za-z_][\w.]*\}$       # {name}: str.format / f-string field
    | ^(?:env|vault|secret|ssm|op|file|k8s|awssm|gcpsm):[/A-Za-z_]  # secret-manager references
    | \[REDACTED:
    """,
    re.VERBOSE,
)
_MASKED = re.compile(r"^[*xX•#.\-_~]+$|\*{3,}|x{4,}|X{4,}|\.\.\.")
_PLACEHOLDER_WORDS = re.compile(
    r"(?i)^(?:your|my)[-_ ]|example|placeholder|changeme|change[-_]me|redacted|dummy|sample|"
    r"^(?:fake|test|foo|bar|baz|todo|tbd|none|null|nil|true|false|yes|no|on|off|empty|required|optional|"
    r"undefined|unset|hidden|secret|password|passwd|token|string|str|int|bool|bytes|text|any|secretstr|"
    r"sensitive|default|auto|prompt|ask|random|generated)$"
)
# Code, not a literal: attribute chains of plain words or constants, calls, subscripts.
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.(?:[a-z_][a-z0-9_]*|[A-Z_][A-Z0-9_]*))+$")
_DOTTED_HEAD = re.compile(r"^(?:[a-z_][a-z0-9_]*|[A-Z_][A-Z0-9_]*)\.")
_CALL = re.compile(r"^(?:new\s+)?[A-Za-z_][\w.]*\s*[(\[]")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PROSE_WORD = re.compile(r"^(?:[a-z]+(?:-[a-z]+)*|\d+)$")


def is_reference(value: str) -> bool:
    """An environment/template/secret-manager reference or a placeholder: names a secret, is none."""
    return bool(_REFERENCE.search(value) or _MASKED.search(value) or _PLACEHOLDER_WORDS.search(value))


def is_code_expression(value: str) -> bool:
    """``settings.DB_PASSWORD``, ``os.environ["PW"]``, ``get_token()``: code that fetches a secret."""
    dotted = _DOTTED.match(value) and _DOTTED_HEAD.match(value)
    return bool(dotted or _CALL.match(value))


def is_literal_secret(
    value: str, *, key: str = "", quoted: bool, code_file: bool = False, prose_follows: bool = False
) -> bool:
    """True when ``value`` (quotes removed) assigned to the secret-named ``key`` must be redacted.

    ``quoted``: the value was in quotes (a literal in any language). ``code_file``: the line is in a
    source file, where an unquoted identifier is a variable. ``prose_follows``: more words follow an
    unquoted value on the line ("password: ask Bob"), so a plain lowercase word or number is prose.
    """
    if len(value) < MIN_VALUE_LEN or is_reference(value):
        return False
    if value.lower() == key.lower() or value.isdigit() and len(value) < 6 and prose_follows:
        return False
    if quoted:
        return True
    if is_code_expression(value) or (code_file and _IDENTIFIER.match(value)):
        return False
    return not (prose_follows and _PROSE_WORD.match(value))
