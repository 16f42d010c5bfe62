"""``rss`` connector: an RSS 2.0 or Atom feed, optionally with each linked page's main text.

Conditional GET (ETag / If-Modified-Since kept in the cursor): an unchanged feed answers 304
and nothing is read. Items are deduplicated by guid, then link. The validators are only kept
when every item was stored; otherwise the next sync downloads the feed again and retries.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Collection, Iterator
from datetime import UTC, datetime
from typing import Any

import feedparser
import httpx
from pydantic import Field, field_validator

from connectors.base import (
    Connector,
    Cursor,
    DocumentFailure,
    DocumentVersion,
    Fetch,
    FetchItem,
    SourceConfig,
    SourceError,
    config_as,
    text_hash,
)
from connectors.extract import html_to_text
from connectors.netguard import guarded_client, guarded_get
from connectors.policy import SourcePolicy
from connectors.text import valid_unicode

_SURROGATE_REF = re.compile(
    rb"&#(?:[xX]0*[dD][89a-fA-F][0-9a-fA-F]{2}|0*(?:5529[6-9]|55[3-9]\d\d|56\d{3}|57[0-2]\d\d|573[0-3]\d|5734[0-3]));"
)
MAX_SEEN = 5000  # ids remembered for dedup; feeds rarely carry more than a few hundred items


class RssConfig(SourceConfig):
    """A feed, and whether each item's linked page is read too."""

    url: str = Field(description="Feed URL (RSS 2.0 or Atom).")
    fetch_linked: bool = Field(False, description="Fetch each item's page text.")
    timeout_s: float = Field(20.0, description="HTTP timeout per request, in seconds.")

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"feed URL must start with http:// or https://, got {value!r}")
        return value


def _stamp(parsed: Any) -> datetime | None:
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC) if parsed else None


def _entry_text(entry: Any) -> str:
    body = (entry.get("content") or [{}])[0].get("value") or entry.get("summary") or ""
    return html_to_text(body) if "<" in body else body.strip()


def parse_feed(content: bytes, url: str) -> Any:
    """The parsed feed; a body that is no RSS/Atom feed is a SourceError naming ``url``.

    Character references to UTF-16 surrogates (``&#xD800;``) crash feedparser with a UnicodeEncodeError:
    they become U+FFFD first, and any other parser failure is reported as the feed's error."""
    content = _SURROGATE_REF.sub(b"&#xFFFD;", content)
    try:
        feed = feedparser.parse(content)
    except Exception as exc:  # a hostile body must not crash the sync
        raise SourceError(f"{url} could not be parsed as a feed ({type(exc).__name__}: {exc})") from None
    if not feed.get("version") and not feed.entries:
        reason = feed.get("bozo_exception") or "no RSS or Atom elements"
        raise SourceError(f"{url} is not an RSS/Atom feed ({reason})")
    return feed


def _download(
    client: httpx.Client, url: str, headers: dict[str, str], policy: SourcePolicy, what: str = "feed URL"
) -> httpx.Response:
    """GET ``url`` through the guard; refused addresses, transport problems and error statuses raise
    SourceError naming the URL."""
    resp = guarded_get(client, url, policy, what=what, headers=headers)
    if resp.status_code >= 400:
        raise SourceError(f"fetching {url} returned HTTP {resp.status_code} {resp.reason_phrase}")
    return resp


def _client(config: RssConfig, policy: SourcePolicy) -> httpx.Client:
    return guarded_client(policy, timeout=config.timeout_s, headers={"User-Agent": "orgmem-rss/0.1"})


class RssConnector(Connector):
    kind = "rss"
    config_cls = RssConfig

    def __init__(self) -> None:
        super().__init__()
        self._failed = False

    def check(self, config: SourceConfig) -> None:
        """The feed answers and parses as a feed (linked pages are checked as items are read)."""
        config = config_as(config, RssConfig)
        policy = self.confinement
        with _client(config, policy) as client:
            parse_feed(_download(client, config.url, {}, policy).content, config.url)

    def fetch(self, config: SourceConfig, cursor: Cursor | None) -> Fetch:
        """New or changed items; returns the validators and the seen ids (the validators only when
        every linked page was read, so a failed page makes the next sync download the feed again)."""
        config = config_as(config, RssConfig)
        previous = dict(cursor or {})
        headers = {
            k: v
            for k, v in (
                ("If-None-Match", previous.get("etag")),
                ("If-Modified-Since", previous.get("modified")),
            )
            if v
        }
        policy = self.confinement
        with _client(config, policy) as client:
            resp = _download(client, config.url, headers, policy)
            if resp.status_code == 304:
                return previous
            feed = parse_feed(resp.content, config.url)
            seen: dict[str, str] = dict(previous.get("seen", {}))
            yield from self._entries(client, feed.entries, config, seen)
        return {
            "etag": None if self._failed else resp.headers.get("etag"),
            "modified": None if self._failed else resp.headers.get("last-modified"),
            "seen": dict(list(seen.items())[-MAX_SEEN:]),
        }

    def _entries(
        self, client: httpx.Client, entries: list[Any], config: RssConfig, seen: dict[str, str]
    ) -> Iterator[FetchItem]:
        links_done: set[str] = set()
        for entry in entries:
            link = valid_unicode(str(entry.get("link") or ""))
            item_id = valid_unicode(str(entry.get("id") or link))
            if not item_id or item_id in links_done or (link and link in links_done):
                continue
            links_done.update({item_id, link} - {""})
            if config.fetch_linked and item_id in seen:
                continue  # a seen item's linked page is not fetched again
            title = entry.get("title") or link
            body = _entry_text(entry)
            if config.fetch_linked and link:
                try:
                    page = _download(client, link, {}, self.confinement, what="linked page")
                    body = html_to_text(page.text, main_only=True) or body
                except SourceError as exc:
                    self._failed = True
                    yield DocumentFailure(
                        item=link, error=f"linked page of feed item {title!r}: {exc}", external_id=item_id
                    )
                    continue
            title = valid_unicode(str(title))
            text = valid_unicode(f"{title}\n\n{body}".strip())
            digest = text_hash(text)
            if seen.get(item_id) == digest:
                continue
            seen.pop(item_id, None)
            seen[item_id] = digest
            yield DocumentVersion(
                external_id=item_id,
                uri=link or config.url,
                text=text,
                content_hash=digest,
                title=title,
                author=entry.get("author"),
                created_at=_stamp(entry.get("published_parsed")),
                updated_at=_stamp(entry.get("updated_parsed")),
                metadata={"feed": config.url, "link": link},
            )

    def retry_cursor(self, previous: Cursor | None, cursor: Cursor, unstored: Collection[str]) -> Cursor:
        """Unstored items are forgotten as seen and the validators dropped: the feed is read again."""
        if not unstored:
            return cursor
        seen = {k: v for k, v in cursor.get("seen", {}).items() if k not in unstored}
        return {"etag": None, "modified": None, "seen": seen}
