"""Property tests for the Slack export and feed parsers: malformed input of any shape either yields
documents or raises ``SourceError`` (the project's clear error), never anything else."""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path

import feedparser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import DocumentFailure, DocumentVersion, SourceError
from connectors.rss import RssConfig, RssConnector, parse_feed
from connectors.slack.export import read_export

BOUNDED = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["1709280000.000100", "1709280060.5", "nan", "inf", "-1", "U1", "C1", "general", ""]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
message_keys = st.sampled_from(
    [
        "type",
        "ts",
        "user",
        "text",
        "subtype",
        "thread_ts",
        "reply_count",
        "message",
        "deleted_ts",
        "bot_id",
        "hidden",
        "username",
        "edited",
    ]
)
messages = st.dictionaries(message_keys, json_values, max_size=8)
records = st.dictionaries(
    st.sampled_from(["id", "name", "real_name", "profile", "is_bot"]), json_values, max_size=5
)


def members():
    """Zip members of a Slack export, each either JSON of a plausible shape or arbitrary bytes."""
    day = st.one_of(
        st.lists(messages, max_size=6).map(json.dumps), json_values.map(json.dumps), st.binary(max_size=40)
    )
    listing = st.one_of(
        st.lists(records, max_size=3).map(json.dumps), json_values.map(json.dumps), st.binary(max_size=20)
    )
    folder = st.sampled_from(["general", "random", "C1", "", "../x", "a/b"])
    return st.fixed_dictionaries(
        {"users.json": listing, "channels.json": listing},
        optional={
            "groups.json": listing,
            "general/2024-03-01.json": day,
            "general/2024-03-02.json": day,
            "random/2024-03-01.json": day,
        },
    ).flatmap(
        lambda fixed: st.dictionaries(folder.map(lambda f: f"{f}/2024-01-01.json"), day, max_size=2).map(
            lambda extra: {**fixed, **extra}
        )
    )


def _read(data: bytes | dict[str, str | bytes]) -> list:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.zip"
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            with zipfile.ZipFile(path, "w") as zf:
                for name, body in data.items():
                    zf.writestr(name, body)
        try:
            return list(read_export(path, include_private=True, only=[], uri_base="https://acme.slack.com"))
        except SourceError:
            return []


def _check_documents(items: list) -> None:
    for item in items:
        assert isinstance(item, DocumentVersion | DocumentFailure)
        if isinstance(item, DocumentVersion):
            assert isinstance(item.text, str)
            item.text.encode("utf-8")  # storable


@BOUNDED
@given(members())
def test_slack_export_of_any_shape_yields_documents_or_source_error(data):
    _check_documents(_read(data))


@BOUNDED
@given(st.binary(max_size=200))
def test_slack_export_that_is_not_a_zip_is_a_source_error(data):
    assert _read(data) == []


def _feed(items: list[tuple[str, str, str, str]], atom: bool) -> str:
    if atom:
        body = "".join(
            f"<entry><id>{g}</id><title>{t}</title><link href='{lk}'/><content type='html'>{d}</content>"
            "</entry>"
            for g, t, lk, d in items
        )
        return f"<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'>{body}</feed>"
    body = "".join(
        f"<item><guid>{g}</guid><title>{t}</title><link>{lk}</link><description>{d}</description></item>"
        for g, t, lk, d in items
    )
    return f"<?xml version='1.0'?><rss version='2.0'><channel><title>x</title>{body}</channel></rss>"


MARKUP_PIECES = list("ab <>&;#x/='\"\n") + [
    "&#xD800;",
    "&amp;",
    "<![CDATA[",
    "]]>",
    "<p>",
    "</p>",
    "<script>",
    "&#0;",
    "\x00",
    "\ufffe",
    "é",
]
markup = st.lists(st.sampled_from(MARKUP_PIECES), max_size=30).map("".join)
feeds = st.one_of(
    st.builds(_feed, st.lists(st.tuples(markup, markup, markup, markup), max_size=4), st.booleans()).map(
        str.encode
    ),
    st.binary(max_size=300),
)


def _entries(content: bytes) -> list:
    config = RssConfig(url="https://news.example.com/feed.xml")
    try:
        feed = parse_feed(content, config.url)
    except SourceError:
        return []
    return list(RssConnector()._entries(None, feed.entries, config, {}))  # type: ignore[arg-type]


@BOUNDED
@given(feeds)
def test_feed_of_any_shape_yields_documents_or_source_error(content):
    _check_documents(_entries(content))


def test_feed_parser_is_the_one_fetch_uses():
    assert feedparser.parse(b"<rss version='2.0'><channel/></rss>").version == "rss20"
    assert _entries(
        _feed([("g1", "Heron news", "https://x/a", "Heron opened a Lisbon office.")], False).encode()
    )
