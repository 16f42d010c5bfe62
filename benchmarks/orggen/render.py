"""Documents as of one night: code and docs files, the Slack export zip, the RSS feed."""

from __future__ import annotations

import html
import io
import json
import re
import zipfile
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

from benchmarks.orggen.model import Block, Doc, Message, NewsItem

START = date(2026, 1, 1)
_TAG = re.compile(r"<[^>]+>")


def night_date(n: int) -> date:
    return START + timedelta(days=n)


def visible_prefix(prefix: str, fmt: str) -> str:
    """What a reader (the connector) sees of a line's text before the value."""
    if fmt != "html":
        return prefix
    return re.sub(r"[ \t]+", " ", html.unescape(_TAG.sub("", prefix))).lstrip()


def _line(block: Block, night: int) -> str:
    return block.fact.line.replace("{V}", block.fact.written_at(night))


def _blocks(doc: Doc, night: int, group: str | None = None) -> list[Block]:
    return [b for b in doc.blocks if b.fact.created <= night and (group is None or b.group == group)]


def render_doc(doc: Doc, night: int) -> str:
    if doc.fmt == "md":
        return _markdown(doc, night)
    if doc.fmt == "html":
        return _html(doc, night)
    return _code(doc, night)


def _markdown(doc: Doc, night: int) -> str:
    out = [f"# {doc.title}", ""]
    if doc.intro:
        out += [" ".join(doc.intro), ""]
    prose = _blocks(doc, night, "prose")
    if prose:
        out += [f"## {doc.headings['prose']}", ""]
        for b in prose:
            out += [*b.before, _line(b, night), ""]
    bullets = _blocks(doc, night, "list")
    if bullets:
        out += [f"## {doc.headings['list']}", ""] + [_line(b, night) for b in bullets] + [""]
    rows = _blocks(doc, night, "table")
    if rows:
        out += [f"## {doc.headings['table']}", "", "| Item | Setting | Value |", "| --- | --- | --- |"]
        out += [_line(b, night) for b in rows] + [""]
    if doc.outro:
        out += [*doc.outro, ""]
    return "\n".join(out)


def _html(doc: Doc, night: int) -> str:
    title = html.escape(doc.title)
    out = [
        "<!DOCTYPE html>",
        "<html>",
        f'<head><meta charset="utf-8"><title>{title}</title></head>',
        "<body>",
        f"<h1>{title}</h1>",
    ]
    if doc.intro:
        out.append(f"<p>{html.escape(' '.join(doc.intro))}</p>")
    prose = _blocks(doc, night, "prose")
    if prose:
        out.append(f"<h2>{doc.headings['prose']}</h2>")
        out += [_line(b, night) for b in prose]
    bullets = _blocks(doc, night, "list")
    if bullets:
        out += [f"<h2>{doc.headings['list']}</h2>", "<ul>"] + [_line(b, night) for b in bullets] + ["</ul>"]
    terms = _blocks(doc, night, "dl")
    if terms:
        out += [f"<h2>{doc.headings['dl']}</h2>", "<dl>"]
        for b in terms:
            out += [*b.before, _line(b, night)]
        out.append("</dl>")
    rows = _blocks(doc, night, "table")
    if rows:
        out += [
            f"<h2>{doc.headings['table']}</h2>",
            "<table>",
            "<tr><th>Item</th> <th>Setting</th> <th>Value</th></tr>",
        ]
        out += [_line(b, night) for b in rows] + ["</table>"]
    if doc.outro:
        out.append(f"<p>{html.escape(' '.join(doc.outro))}</p>")
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def _code(doc: Doc, night: int) -> str:
    out = list(doc.intro)
    for b in _blocks(doc, night):
        out += [*b.before, _line(b, night), *b.after]
    out += doc.outro
    return "\n".join(out).rstrip("\n") + "\n"


# ---------------------------------------------------------------- slack


def stamp(n: int, seconds: int) -> str:
    base = datetime(night_date(n).year, night_date(n).month, night_date(n).day, tzinfo=UTC)
    return f"{int(base.timestamp()) + seconds}.{(seconds * 37) % 1000000:06d}"


def _message_text(msg: Message, night: int) -> str:
    return msg.fact.line.replace("{V}", msg.fact.written_at(night)) if msg.fact else msg.text


def slack_records(messages: list[Message], night: int) -> dict[str, list[dict]]:
    """Per "<channel>/<YYYY-MM-DD>.json", the records a fresh export of ``night`` holds."""
    files: dict[str, list[dict]] = defaultdict(list)

    def day_of(ts: str) -> str:
        return datetime.fromtimestamp(float(ts), UTC).date().isoformat()

    for msg in messages:
        if msg.night > night:
            continue
        gone = msg.deleted is not None and msg.deleted <= night
        if gone and msg.deleted_form == "vanish":
            continue
        edits = [(n, ts) for n, ts in msg.edits if n <= night]
        record: dict = {"type": "message", "ts": msg.ts, "user": msg.user}
        if msg.subtype:
            record["subtype"] = msg.subtype
        record.update(msg.extra)
        if msg.edit_form == "inplace" and edits:
            record["text"] = _message_text(msg, night)
            record["edited"] = {"user": msg.user, "ts": edits[-1][1]}
        else:
            record["text"] = _message_text(msg, msg.night)
        if msg.thread_ts:
            record["thread_ts"] = msg.thread_ts
        if msg.reply_count:
            record["reply_count"] = msg.reply_count
        files[f"{msg.channel}/{day_of(msg.ts)}.json"].append(record)
        if msg.edit_form == "event":
            for n, ts in edits:
                inner = {
                    "type": "message",
                    "ts": msg.ts,
                    "user": msg.user,
                    "text": _message_text(msg, n),
                    "edited": {"user": msg.user, "ts": ts},
                }
                if msg.thread_ts:
                    inner["thread_ts"] = msg.thread_ts
                files[f"{msg.channel}/{day_of(ts)}.json"].append(
                    {
                        "type": "message",
                        "subtype": "message_changed",
                        "ts": ts,
                        "hidden": True,
                        "message": inner,
                    }
                )
        if gone:
            files[f"{msg.channel}/{day_of(msg.deleted_ts)}.json"].append(
                {
                    "type": "message",
                    "subtype": "message_deleted",
                    "ts": msg.deleted_ts,
                    "hidden": True,
                    "deleted_ts": msg.ts,
                }
            )
    for records in files.values():
        records.sort(key=lambda r: float(r["ts"]))
    return dict(files)


def slack_zip(users: list[dict], channels: list[dict], messages: list[Message], night: int) -> bytes:
    stamp = (*night_date(night).timetuple()[:3], 18, 0, 0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        entries = {"users.json": users, "channels.json": channels, **slack_records(messages, night)}
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, json.dumps(entries[name], ensure_ascii=False, indent=1))
    return buf.getvalue()


# ---------------------------------------------------------------- feed


def item_text(item: NewsItem, night: int) -> str:
    return item.fact.line.replace("{V}", item.fact.written_at(night)) if item.fact else item.body


def feed_xml(org: str, site: str, items: list[NewsItem], night: int) -> str:
    live = sorted((i for i in items if i.night <= night), key=lambda i: (-i.night, -i.minute, i.guid))
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rss version="2.0">',
        "<channel>",
        f"<title>{escape(org)} newsroom</title>",
        f"<link>{site}/news</link>",
        f"<description>Announcements from {escape(org)}</description>",
    ]
    for item in live:
        d = night_date(item.night)
        when = datetime(d.year, d.month, d.day, 8 + item.minute // 60, item.minute % 60, tzinfo=UTC)
        out += [
            "<item>",
            f"<title>{escape(item.title)}</title>",
            f"<link>{item.link}</link>",
            f'<guid isPermaLink="false">{item.guid}</guid>',
            f"<pubDate>{format_datetime(when, usegmt=True)}</pubDate>",
            f"<description>{escape(item_text(item, night))}</description>",
            "</item>",
        ]
    out += ["</channel>", "</rss>", ""]
    return "\n".join(out)
