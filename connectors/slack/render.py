"""Slack messages → documents, shared by the export-zip and Web API readers.

One document per thread (parent and replies together, so an answer stays next to its question)
and one per channel-day for top-level messages without replies. Edits are applied, deleted and
tombstoned messages and join/leave/bot noise are dropped, user ids become names.
"""

from __future__ import annotations

import html
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors.base import DocumentVersion, text_hash
from connectors.text import valid_unicode

# Subtypes that carry no knowledge: membership changes, channel housekeeping, bots, integrations.
NOISE_SUBTYPES = frozenset(
    {
        "channel_join",
        "channel_leave",
        "group_join",
        "group_leave",
        "channel_topic",
        "channel_purpose",
        "channel_name",
        "group_topic",
        "group_purpose",
        "group_name",
        "channel_archive",
        "channel_unarchive",
        "group_archive",
        "group_unarchive",
        "pinned_item",
        "unpinned_item",
        "bot_message",
        "bot_add",
        "bot_remove",
        "bot_enable",
        "bot_disable",
        "reminder_add",
        "reminder_delete",
        "slackbot_response",
        "joiner_notification",
        "channel_convert_to_private",
        "channel_convert_to_public",
        "tombstone",
        "ekm_access_denied",
        "assistant_app_thread",
    }
)

_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|([^>]*))?>")
_CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")


@dataclass(frozen=True)
class Channel:
    id: str
    name: str
    private: bool = False


_STRING_FIELDS = ("type", "subtype", "user", "username", "text", "thread_ts", "deleted_ts", "bot_id")


def _timestamp(value: Any) -> str | None:
    """A Slack ``ts`` ("1709280000.000100") as a string, or None when it is no finite epoch time."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        seconds = float(value)
        datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return str(value) if seconds >= 0 else None


def normalize_message(raw: Any) -> dict[str, Any] | None:
    """A message fit for rendering, or None: a usable ``ts``; string fields are strings (else dropped)
    with lone surrogates replaced; an edit's inner message normalised the same way. Exports and API
    pages are untrusted input, and one odd message must not fail a channel."""
    if not isinstance(raw, dict):
        return None
    ts = _timestamp(raw.get("ts"))
    if ts is None:
        return None
    skip = (*_STRING_FIELDS, "ts", "message", "reply_count")
    msg = {k: v for k, v in raw.items() if k not in skip}
    msg["ts"] = ts
    for key in _STRING_FIELDS:
        value = raw.get(key)
        if isinstance(value, str):
            msg[key] = valid_unicode(value)
    if "thread_ts" in msg and _timestamp(msg["thread_ts"]) is None:
        del msg["thread_ts"]
    if isinstance(raw.get("reply_count"), int) and not isinstance(raw.get("reply_count"), bool):
        msg["reply_count"] = raw["reply_count"]
    inner = normalize_message(raw.get("message"))
    if inner is not None:
        msg["message"] = inner
    return msg


def user_names(users: Iterable[dict[str, Any]]) -> dict[str, str]:
    """id → the name people see (display name, else real name, else handle)."""
    names = {}
    for user in users:
        profile = user.get("profile")
        profile = profile if isinstance(profile, dict) else {}
        candidates = (
            profile.get("display_name"), user.get("real_name"), profile.get("real_name"), user.get("name")
        )  # fmt: skip
        name = next((c for c in candidates if isinstance(c, str) and c), user["id"])
        names[user["id"]] = valid_unicode(name)
    return names


def apply_events(messages: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages in time order with edits applied and deletions removed; noise dropped."""
    by_ts: dict[str, dict[str, Any]] = {}
    usable = [m for m in map(normalize_message, messages) if m is not None]
    for msg in sorted(usable, key=lambda m: float(m["ts"])):
        subtype = msg.get("subtype")
        if subtype == "message_changed" and isinstance(msg.get("message"), dict):
            edited = msg["message"]
            if edited.get("ts") in by_ts:
                by_ts[edited["ts"]] = {**by_ts[edited["ts"]], **edited}
            continue
        if subtype == "message_deleted":
            by_ts.pop(msg.get("deleted_ts", ""), None)
            continue
        by_ts[msg["ts"]] = msg
    return [m for m in by_ts.values() if not is_noise(m)]


def is_noise(msg: dict[str, Any]) -> bool:
    if msg.get("subtype") in NOISE_SUBTYPES or msg.get("hidden") or msg.get("bot_id"):
        return True
    return not (msg.get("text") or "").strip()


def clean_text(text: str, names: dict[str, str], channels: dict[str, str]) -> str:
    """Slack markup → plain text: mentions by name, links as 'label (url)', entities unescaped."""
    text = _USER.sub(lambda m: "@" + names.get(m[1], m[2] or m[1]), text)
    text = _CHANNEL.sub(lambda m: "#" + (channels.get(m[1]) or m[2] or m[1]), text)
    text = _SPECIAL.sub(lambda m: "@" + m[1], text)
    text = _LINK.sub(lambda m: f"{m[2]} ({m[1]})" if m[2] and m[2] != m[1] else m[1], text)
    return html.unescape(text)


def _when(ts: str) -> datetime:
    return datetime.fromtimestamp(float(ts), UTC)


def group(
    messages: list[dict[str, Any]],
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
    """(threads by thread_ts, top-level messages by UTC day). Replies whose parent was deleted still group."""
    threads: dict[str, list[dict[str, Any]]] = defaultdict(list)
    days: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for msg in messages:
        thread_ts = msg.get("thread_ts")
        if thread_ts and (thread_ts != msg["ts"] or msg.get("reply_count")):
            threads[thread_ts].append(msg)
        else:
            days[_when(msg["ts"]).date().isoformat()].append(msg)
    return threads, days


def render(
    channel: Channel,
    messages: list[dict[str, Any]],
    names: dict[str, str],
    channels: dict[str, str],
    uri_base: str,
) -> Iterator[DocumentVersion]:
    """Documents for one channel's cleaned messages (see ``apply_events``)."""
    threads, days = group(messages)
    audience = f"slack-private:{channel.name}" if channel.private else None
    for thread_ts, msgs in sorted(threads.items()):
        author = names.get(msgs[0].get("user", ""), msgs[0].get("user"))
        title = f"#{channel.name} thread {_when(thread_ts):%Y-%m-%d} started by {author}"
        yield _document(
            f"{channel.id}/thread/{thread_ts}",
            title,
            msgs,
            names,
            channels,
            channel,
            audience,
            f"{uri_base}/archives/{channel.id}/p{thread_ts.replace('.', '')}",
            author,
        )
    for day, msgs in sorted(days.items()):
        yield _document(
            f"{channel.id}/day/{day}",
            f"#{channel.name} {day}",
            msgs,
            names,
            channels,
            channel,
            audience,
            f"{uri_base}/archives/{channel.id}#{day}",
            None,
        )


def _document(  # noqa: PLR0913  # one Slack document's parts, each a different thread field
    external_id: str,
    title: str,
    msgs: list[dict[str, Any]],
    names: dict[str, str],
    channels: dict[str, str],
    channel: Channel,
    audience: str | None,
    uri: str,
    author: str | None,
) -> DocumentVersion:
    lines = [title]
    for msg in msgs:
        who = names.get(msg.get("user", ""), msg.get("user") or msg.get("username") or "someone")
        lines.append(
            f"[{_when(msg['ts']):%Y-%m-%d %H:%M}] {who}: {clean_text(msg.get('text', ''), names, channels)}"
        )
    text = "\n".join(lines)
    return DocumentVersion(
        external_id=external_id,
        uri=uri,
        text=text,
        content_hash=text_hash(text),
        title=title,
        author=author,
        created_at=_when(msgs[0]["ts"]),
        updated_at=_when(msgs[-1]["ts"]),
        audience=audience,
        metadata={"channel": channel.name, "channel_id": channel.id, "messages": len(msgs)},
    )
