"""Read Slack through the Web API (users.list, conversations.list / history / replies).

Per-channel cursor: the newest message ts stored per channel. Each sync re-reads from the start
of the day ``lookback_days`` before it, so day documents stay whole and recent threads pick up
new replies. HTTP 429 is retried after ``Retry-After`` a bounded number of times; a channel that
still fails becomes a per-document failure naming it and keeps its old cursor.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from connectors.base import DocumentFailure, FetchItem, SourceError
from connectors.slack.render import Channel, apply_events, render, user_names

_API_ERRORS = (SlackApiError, SlackClientError, OSError)


class RetryAfterHandler(RetryHandler):
    """Retry HTTP 429 after exactly ``Retry-After`` seconds (capped), at most ``max_retry_count`` times."""

    def __init__(self, max_retry_count: int, max_wait_s: float, sleep: Callable[[float], None] = time.sleep):
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait_s = max_wait_s
        self.sleep = sleep

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and response.status_code == 429

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        headers = {k.lower(): v for k, v in (response.headers if response else {}).items()}
        raw = (headers.get("retry-after") or ["1"])[0]
        try:
            wait = float(raw)
        except ValueError:
            wait = 1.0
        self.sleep(min(max(wait, 0.0), self.max_wait_s))
        state.next_attempt_requested = True
        state.increment_current_attempt()


def describe(exc: Exception, method: str, where: str) -> str:
    """A readable reason for a failed API call, naming the method and channel."""
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        if status == 429:
            return (
                f"Slack API kept answering HTTP 429 (rate limited) to {method} for {where}; retries exhausted"
            )
        return f"Slack API {method} failed for {where}: HTTP {status} {exc.response.get('error', '')}".strip()
    return f"Slack API {method} failed for {where}: {exc}"


def _pages(call: Callable[..., Any], key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Items of every page of a cursor-paginated method."""
    cursor = None
    while True:
        resp = call(cursor=cursor, limit=200, **kwargs) if cursor else call(limit=200, **kwargs)
        yield from resp.get(key) or []
        cursor = (resp.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return


class ApiReader:
    """One sync's worth of Web API reading; ``channel_latest`` is the per-channel cursor it builds."""

    def __init__(
        self, client: WebClient, *, include_private: bool, only: list[str], lookback_days: int, uri_base: str
    ) -> None:
        self.client = client
        self.include_private = include_private
        self.only = only
        self.lookback = timedelta(days=lookback_days)
        self.uri_base = uri_base
        self.channel_latest: dict[str, str] = {}

    def read(self, previous: dict[str, str]) -> Iterator[FetchItem]:
        self.channel_latest = dict(previous)
        try:
            names = user_names(_pages(self.client.users_list, "members"))
            types = "public_channel,private_channel" if self.include_private else "public_channel"
            listed = list(
                _pages(self.client.conversations_list, "channels", types=types, exclude_archived=True)
            )
        except _API_ERRORS as exc:
            raise SourceError(describe(exc, "users.list/conversations.list", "the workspace")) from None
        channels = [Channel(c["id"], c["name"], bool(c.get("is_private"))) for c in listed]
        by_id = {c.id: c.name for c in channels}
        for channel in sorted(channels, key=lambda c: c.name):
            if self.only and channel.name not in self.only:
                continue
            yield from self._channel(channel, names, by_id, previous.get(channel.id))

    def _oldest(self, latest: str | None) -> str:
        if not latest:
            return "0"
        start = datetime.fromtimestamp(float(latest), UTC) - self.lookback
        return str(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp())

    def _channel(
        self, channel: Channel, names: dict[str, str], by_id: dict[str, str], latest: str | None
    ) -> Iterator[FetchItem]:
        where = f"#{channel.name} ({channel.id})"
        method = "conversations.history"
        try:
            history = list(
                _pages(
                    self.client.conversations_history,
                    "messages",
                    channel=channel.id,
                    oldest=self._oldest(latest),
                )
            )
            method = "conversations.replies"
            messages = list(history)
            for parent in history:
                if parent.get("reply_count"):
                    replies = _pages(
                        self.client.conversations_replies, "messages", channel=channel.id, ts=parent["ts"]
                    )
                    messages += [r for r in replies if r.get("ts") != parent["ts"]]
        except _API_ERRORS as exc:
            yield DocumentFailure(item=where, error=describe(exc, method, where))
            return
        if history:
            newest = max(history, key=lambda m: float(m["ts"]))["ts"]
            if not latest or float(newest) > float(latest):
                self.channel_latest[channel.id] = newest
        yield from render(channel, apply_events(messages), names, by_id, self.uri_base)
