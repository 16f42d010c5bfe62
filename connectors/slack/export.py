"""Read a standard Slack workspace export zip (users.json, channels.json, <channel>/<YYYY-MM-DD>.json).

A zip that is corrupt or is not a Slack export is a ``SourceError`` naming the file; one unreadable
daily file is a per-document failure naming the channel and file, and the rest is read.
"""

from __future__ import annotations

import json
import posixpath
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from connectors.base import DocumentFailure, FetchItem, SourceError
from connectors.slack.render import Channel, apply_events, normalize_message, render, user_names
from connectors.text import valid_unicode


def _load(zf: zipfile.ZipFile, member: str, label: str) -> Any:
    try:
        return json.loads(zf.read(member))
    except (json.JSONDecodeError, UnicodeDecodeError, zipfile.BadZipFile, KeyError) as exc:
        raise SourceError(f"slack export {label}: {member} is unreadable ({exc})") from None


def _records(zf: zipfile.ZipFile, member: str, label: str) -> list[dict[str, Any]]:
    """A users/channels/groups listing: a JSON list of objects with a string ``id``; else SourceError."""
    data = _load(zf, member, label)
    if not isinstance(data, list):
        raise SourceError(f"slack export {label}: {member} is not a JSON list")
    records = [r for r in data if isinstance(r, dict) and isinstance(r.get("id"), str) and r["id"]]
    return [{k: valid_unicode(v) if isinstance(v, str) else v for k, v in r.items()} for r in records]


def _channels(records: list[dict[str, Any]], *, private: bool = False) -> list[Channel]:
    """Channels with a usable name (their folder in the zip); nameless entries are left out."""
    named = [r for r in records if isinstance(r.get("name"), str) and r["name"].strip()]
    return [Channel(r["id"], r["name"], private=private) for r in named]


def _prefix(zf: zipfile.ZipFile, label: str) -> str:
    """Folder inside the zip that holds the export (exports are sometimes zipped inside a folder)."""
    names = zf.namelist()
    found = sorted((n for n in names if posixpath.basename(n) == "channels.json"), key=len)
    if not found:
        raise SourceError(f"{label} is not a Slack export: it has no channels.json")
    prefix = posixpath.dirname(found[0])
    prefix = f"{prefix}/" if prefix else ""
    if f"{prefix}users.json" not in names:
        raise SourceError(f"{label} is not a Slack export: it has no users.json beside channels.json")
    return prefix


def _open_zip(path: Path, label: str) -> zipfile.ZipFile:
    """The export as an open zip; a missing or corrupt file is a SourceError naming it."""
    if not path.is_file():
        raise SourceError(f"slack export {label} does not exist")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SourceError(f"slack export {label} is not a valid zip file ({exc})") from None


def check_export(path: Path) -> None:
    """Raise the SourceError ``read_export`` would for a missing, corrupt or non-Slack zip."""
    label = str(path)
    zf = _open_zip(path, label)
    with zf:
        prefix = _prefix(zf, label)
        for name in ("users.json", "channels.json"):
            if not isinstance(_load(zf, f"{prefix}{name}", label), list):
                raise SourceError(f"slack export {label}: {prefix}{name} is unreadable (not a JSON list)")
        bad = zf.testzip()
        if bad:
            raise SourceError(f"slack export {label} is not a valid zip file (bad CRC in {bad})")


def read_export(path: Path, *, include_private: bool, only: list[str], uri_base: str) -> Iterator[FetchItem]:
    """Every document of the export; ``only`` limits to those channel names when non-empty."""
    label = str(path)
    zf = _open_zip(path, label)
    with zf:
        prefix = _prefix(zf, label)
        names = user_names(_records(zf, f"{prefix}users.json", label))
        channels = _channels(_records(zf, f"{prefix}channels.json", label))
        if include_private and f"{prefix}groups.json" in zf.namelist():
            channels += _channels(_records(zf, f"{prefix}groups.json", label), private=True)
        by_id = {c.id: c.name for c in channels}
        members = zf.namelist()
        for channel in sorted(channels, key=lambda c: c.name):
            if only and channel.name not in only:
                continue
            folder = f"{prefix}{channel.name}/"
            messages: list[dict[str, Any]] = []
            failure = None
            for member in sorted(m for m in members if m.startswith(folder) and m.endswith(".json")):
                try:
                    day = json.loads(zf.read(member))
                    if not isinstance(day, list):
                        raise ValueError("expected a JSON list of messages")
                    messages += [m for m in map(normalize_message, day) if m is not None]
                except (ValueError, zipfile.BadZipFile, NotImplementedError) as exc:
                    failure = DocumentFailure(
                        item=f"{label}:{member}",
                        error=f"#{channel.name}: {member} is unreadable ({exc}); channel skipped",
                    )
                    break
            if failure:  # a missing day could cut a thread in half: store nothing of this channel
                yield failure
                continue
            yield from render(channel, apply_events(messages), names, by_id, uri_base)
