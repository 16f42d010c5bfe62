"""Property tests for the secret scanner: it never raises, redacting twice equals redacting once, the
output holds no finding and no more secrets than the input, and lines without a secret stay as they were."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orgmem.governance import find_secrets, govern
from orgmem.governance.redact import merge
from tests.governance.secret_corpus import AWS_ID, AWS_SECRET, JWT, LOOK_ALIKES, SECRETS

BOUNDED = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FRAGMENTS = [
    "password", "db_password", "MYSQL_PWD", "token", "api_key", "secret", "Authorization: Bearer ",
    "export ", "--password", " -p", "mysql", "=", ": ", " = ", "\"", "'", "`", "${DB_PASSWORD}", "<pw>",
    "[REDACTED:password]", "postgres://app:", "@db:5432/app", "redis://:", "https://u:", AWS_ID,
    AWS_SECRET, JWT, "Vq3nR8tLp2Xw", "hunter2-is-long", "ghp_Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "\n", " ", "\t", ",", ";",
    "&", "?", "{", "}", "[", "]", "(", ")", "<password>", "</password>", "Ordinary prose about Kestrel.",
]  # fmt: skip
PATHS = ["", "notes.md", "config.ini", ".env", "settings.yaml", "app.py", "main.go", "run.sh", "x.json"]

texts = st.one_of(
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), max_size=40).map("".join),
    st.lists(st.sampled_from([c.text for c in SECRETS + LOOK_ALIKES]), max_size=6).map("\n".join),
)


def _line_spans(text: str) -> list[tuple[int, int, str]]:
    spans, offset = [], 0
    for line in text.split("\n"):
        spans.append((offset, offset + len(line), line))
        offset += len(line) + 1
    return spans


@BOUNDED
@given(texts, st.sampled_from(PATHS))
def test_scanner_never_raises_and_is_idempotent(text, path):
    once = govern(text, path=path)
    twice = govern(once.text, path=path)
    assert twice.text == once.text and twice.redactions == []
    assert merge(find_secrets(once.text, path)) == []
    assert len(merge(find_secrets(once.text, path))) <= len(merge(find_secrets(text, path)))


@BOUNDED
@given(texts, st.sampled_from(PATHS))
def test_lines_without_a_secret_are_kept(text, path):
    spans = merge(find_secrets(text, path))
    out_lines = set(govern(text, path=path).text.split("\n"))
    for start, end, line in _line_spans(text):
        if not any(s.start <= end and s.end >= start for s in spans):
            assert line in out_lines
