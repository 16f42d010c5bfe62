"""Real fixtures for connector and ingest tests, built on the fly: a git repository with history,
a docs folder (md/html/pdf), a Slack export zip, and local HTTP servers for a feed and the Slack
Web API. Every planted secret is a constant here so tests can assert it never reaches a chunk."""

from __future__ import annotations

import json
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

# Fake credentials (shaped like real ones so the detectors fire; valid nowhere).
AWS_KEY_ID = "AKIAQ3EGRTYU7XNPLM2Z"
AWS_SECRET = "k9Tz/8vQ2wLx+R4mN7bP1cY6sD3fH5jK0gE2aW9u"
SLACK_TOKEN = "xoxb-112233445566-778899001122-AbCdEfGhIjKlMnOpQrStUvWx"
PLANTED = (AWS_KEY_ID, AWS_SECRET, SLACK_TOKEN)

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_SYSTEM": "/dev/null",
}


def git(repo: Path, *args: str) -> str:
    import os

    out = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **_GIT_ENV},
    )
    return out.stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


APP_V1 = '''"""Ledger service entry point."""


def settle(invoice_id: str) -> str:
    """Settle one invoice through the Heron gateway."""
    return f"settled {invoice_id}"


def refund(invoice_id: str) -> str:
    return f"refunded {invoice_id}"
'''

SETTINGS_PY = f'''"""Deployment settings (the keys below are planted fakes)."""

AWS_ACCESS_KEY_ID = "{AWS_KEY_ID}"
AWS_SECRET_ACCESS_KEY = "{AWS_SECRET}"
REGION = "eu-west-1"
'''


def make_git_repo(root: Path, *, max_size_file_bytes: int = 3000) -> Path:
    """A repo with one commit: code, a planted key, a binary, vendored/lock/oversized files, an id_rsa,
    and a .gitignore'd file present only in the working tree."""
    repo = root / "repo"
    (repo / "src").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# Ledgerfox\n\nLedgerfox settles invoices through the Heron gateway.\n")
    (repo / "src" / "app.py").write_text(APP_V1)
    (repo / "src" / "util.py").write_text("def add(a, b):\n    return a + b\n")
    (repo / "config").mkdir()
    (repo / "config" / "settings.py").write_text(SETTINGS_PY)
    (repo / "docs").mkdir()
    (repo / "docs" / "old.md").write_text("# Old notes\n\nThe legacy exporter ran on Tuesdays.\n")
    (repo / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (repo / "data.bin").write_bytes(b"abc\x00def" * 10)
    (repo / "node_modules" / "left-pad").mkdir(parents=True)
    (repo / "node_modules" / "left-pad" / "index.js").write_text("module.exports = () => 1;\n")
    (repo / "package-lock.json").write_text('{"lockfileVersion": 3}\n')
    (repo / "huge.txt").write_text("x" * (max_size_file_bytes + 1))
    (repo / "id_rsa").write_text(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
    )
    (repo / ".gitignore").write_text("local-secrets.txt\n")
    commit_all(repo, "initial")
    (repo / "local-secrets.txt").write_text(f"never committed {AWS_SECRET}\n")
    return repo


# ---------------------------------------------------------------- docs folder


def make_pdf(path: Path, lines: list[str]) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=A4)
    y = 800
    for line in lines:
        pdf.drawString(72, y, line)
        y -= 16
    pdf.showPage()
    pdf.save()


def make_docs_folder(root: Path) -> Path:
    docs = root / "docs"
    (docs / "team").mkdir(parents=True)
    (docs / "guide.md").write_text(
        "# Onboarding guide\n\nNew hires get a Heron gateway account on day one.\n"
    )
    (docs / "notes.txt").write_text("The on-call rotation changes every Monday at 09:00.\n")
    (docs / "team" / "page.html").write_text(
        "<html><head><title>Team page</title><style>.x{color:red} STYLE_MARKER</style></head>"
        "<body><script>var SCRIPT_MARKER = 1;</script><h1>Platform team</h1>"
        "<p>The platform team owns the Kestrel deploy pipeline.</p></body></html>"
    )
    make_pdf(docs / "report.pdf", ["Quarterly report", "Revenue from the Heron gateway grew 12 percent."])
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf\n%%EOF")
    (docs / "image.png").write_bytes(b"\x89PNG\r\n")
    return docs


# ---------------------------------------------------------------- slack export

USERS = [
    {"id": "U1", "name": "alice", "real_name": "Alice Ng", "profile": {"display_name": "alice"}},
    {"id": "U2", "name": "bob", "real_name": "Bob Ruiz", "profile": {"display_name": ""}},
    {"id": "B1", "name": "deploybot", "is_bot": True, "profile": {}},
]
CHANNELS = [{"id": "C1", "name": "general"}, {"id": "C2", "name": "random"}]
GROUPS = [{"id": "G1", "name": "secret-plans"}]


def _m(ts: str, user: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "message", "ts": ts, "user": user, "text": text, **extra}


# 2024-03-01 00:00 UTC = 1709251200
GENERAL_DAY1 = [
    _m(
        "1709280000.000100", "U1", "Where do we deploy Kestrel?", thread_ts="1709280000.000100", reply_count=2
    ),
    _m("1709280060.000200", "U2", "From the <#C2|random> runner, ask <@U1>", thread_ts="1709280000.000100"),
    _m("1709280120.000300", "U1", "Thanks, got it", thread_ts="1709280000.000100"),
    {
        "type": "message",
        "subtype": "channel_join",
        "ts": "1709280200.000400",
        "user": "U2",
        "text": "<@U2> has joined the channel",
    },
    {
        "type": "message",
        "subtype": "bot_message",
        "ts": "1709280300.000500",
        "bot_id": "B1",
        "text": "BOT_NOISE_MARKER build passed",
    },
    _m("1709280400.000600", "U1", "Standup moved to 10:30", edited={"user": "U1", "ts": "1709280500.000000"}),
    _m("1709280450.000650", "U2", "Deploy window is Thursday"),
    {
        "type": "message",
        "subtype": "message_changed",
        "ts": "1709280460.000000",
        "message": _m("1709280450.000650", "U2", "Deploy window is Friday", edited={"user": "U2"}),
    },
    _m("1709280600.000700", "U2", "DELETED_MARKER oops wrong channel"),
    {
        "type": "message",
        "subtype": "message_deleted",
        "ts": "1709280610.000000",
        "deleted_ts": "1709280600.000700",
    },
    {
        "type": "message",
        "subtype": "tombstone",
        "ts": "1709280700.000800",
        "user": "USLACKBOT",
        "text": "This message was deleted.",
        "thread_ts": "1709280700.000800",
        "reply_count": 1,
        "hidden": True,
    },
    _m("1709280760.000900", "U1", "reply to a deleted parent survives", thread_ts="1709280700.000800"),
    _m("1709280800.001000", "U2", f"temporary token {SLACK_TOKEN} please rotate"),
]
GENERAL_DAY2 = [_m("1709366400.000100", "U1", "Quarterly planning starts Monday")]
RANDOM_DAY1 = [_m("1709280000.000500", "U2", "Lunch at the Heron cafe?")]
PRIVATE_DAY1 = [_m("1709280000.000900", "U1", "PRIVATE_MARKER acquisition talks")]


def make_slack_zip(path: Path, *, extra_general: list[dict[str, Any]] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("users.json", json.dumps(USERS))
        zf.writestr("channels.json", json.dumps(CHANNELS))
        zf.writestr("groups.json", json.dumps(GROUPS))
        zf.writestr("general/2024-03-01.json", json.dumps(GENERAL_DAY1 + (extra_general or [])))
        zf.writestr("general/2024-03-02.json", json.dumps(GENERAL_DAY2))
        zf.writestr("random/2024-03-01.json", json.dumps(RANDOM_DAY1))
        zf.writestr("secret-plans/2024-03-01.json", json.dumps(PRIVATE_DAY1))
    return path


# ---------------------------------------------------------------- HTTP servers


@dataclass
class ServerState:
    """What the fake servers serve and what they saw."""

    routes: dict[str, tuple[int, str, str]] = field(default_factory=dict)  # path -> (status, type, body)
    etag: str | None = None
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def serve_rss(self, items: list[tuple[str, str, str, str]], path: str = "/feed.xml") -> None:
        """Serve an RSS 2.0 feed of ``items`` (see ``rss_feed``) at ``path``."""
        self.routes[path] = (200, "application/rss+xml", rss_feed(items))


def _feed_handler(state: ServerState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            state.requests.append((self.path, dict(self.headers)))
            status, ctype, body = state.routes.get(self.path, (404, "text/plain", "not found"))
            etag = state.etag if self.path == "/feed.xml" else None
            if etag and self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.end_headers()
                return
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            if etag:
                self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def feed_server(state: ServerState) -> Iterator[str]:
    with serve(_feed_handler(state)) as url:
        yield url


def _entries(template: str, items: list[tuple[str, str, str, str]]) -> str:
    """``template`` (fields ``g``, ``link``, ``t``, ``d``) filled in for each (id, link, title, text) item."""
    return "".join(template.format(g=g, link=link, t=t, d=d) for g, link, t, d in items)


def rss_feed(items: list[tuple[str, str, str, str]]) -> str:
    """RSS 2.0 with (guid, link, title, description) items."""
    body = _entries(
        "<item><guid>{g}</guid><link>{link}</link><title>{t}</title><description>{d}</description>"
        "<pubDate>Mon, 04 Mar 2024 10:00:00 GMT</pubDate></item>", items)
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>News</title>{body}</channel></rss>'


def atom_feed(items: list[tuple[str, str, str, str]]) -> str:
    """Atom with (id, link, title, summary) entries."""
    body = _entries(
        "<entry><id>{g}</id><link href='{link}'/><title>{t}</title><summary>{d}</summary>"
        "<updated>2024-03-04T10:00:00Z</updated></entry>", items)
    return f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>{body}</feed>'


# ---------------------------------------------------------------- Slack Web API


@dataclass
class SlackApiState:
    channels: list[dict[str, Any]]
    history: dict[str, list[dict[str, Any]]]  # channel id -> messages (newest first, as Slack returns them)
    replies: dict[str, list[dict[str, Any]]]  # thread ts -> parent + replies
    rate_limited: set[str] = field(default_factory=set)  # "method:channel" answering 429 forever
    page_size: int = 2
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)


def _page(items: list[dict[str, Any]], params: dict[str, str], size: int) -> tuple[list[dict[str, Any]], str]:
    start = int(params.get("cursor") or 0)
    nxt = start + size
    return items[start:nxt], (str(nxt) if nxt < len(items) else "")


def _slack_handler(state: SlackApiState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            params = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            method = urlparse(self.path).path.rsplit("/", 1)[-1]
            state.calls.append((method, params))
            if self.headers.get("Authorization") != "Bearer xoxb-test-token":
                return self._json(200, {"ok": False, "error": "invalid_auth"})
            if f"{method}:{params.get('channel', '')}" in state.rate_limited:
                return self._json(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "0"})
            return self._json(200, self._answer(method, params))

        def _answer(self, method: str, params: dict[str, str]) -> dict[str, Any]:
            if method == "users.list":
                items, nxt = _page(USERS, params, state.page_size)
                return {"ok": True, "members": items, "response_metadata": {"next_cursor": nxt}}
            if method == "conversations.list":
                wanted = params.get("types", "public_channel").split(",")
                chans = [
                    c
                    for c in state.channels
                    if ("private_channel" if c.get("is_private") else "public_channel") in wanted
                ]
                items, nxt = _page(chans, params, state.page_size)
                return {"ok": True, "channels": items, "response_metadata": {"next_cursor": nxt}}
            if method == "conversations.history":
                oldest = float(params.get("oldest") or 0)
                msgs = [m for m in state.history.get(params["channel"], []) if float(m["ts"]) > oldest]
                items, nxt = _page(msgs, params, state.page_size)
                return {
                    "ok": True,
                    "messages": items,
                    "has_more": bool(nxt),
                    "response_metadata": {"next_cursor": nxt},
                }
            if method == "conversations.replies":
                items, nxt = _page(state.replies.get(params["ts"], []), params, state.page_size)
                return {"ok": True, "messages": items, "response_metadata": {"next_cursor": nxt}}
            return {"ok": False, "error": "unknown_method"}

        def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def default_slack_api() -> SlackApiState:
    parent = GENERAL_DAY1[0]
    thread = [parent, GENERAL_DAY1[1], GENERAL_DAY1[2]]
    general = [
        m
        for m in GENERAL_DAY1
        if m.get("thread_ts") in (None, m["ts"])
        and m.get("subtype") not in ("message_changed", "message_deleted", "tombstone")
        and m["ts"] != "1709280600.000700"
    ]
    general = [GENERAL_DAY1[7]["message"] if m["ts"] == "1709280450.000650" else m for m in general]
    return SlackApiState(
        channels=[
            {"id": "C1", "name": "general"},
            {"id": "C2", "name": "random"},
            {"id": "G1", "name": "secret-plans", "is_private": True},
        ],
        history={
            "C1": sorted(general + GENERAL_DAY2, key=lambda m: -float(m["ts"])),
            "C2": RANDOM_DAY1,
            "G1": PRIVATE_DAY1,
        },
        replies={parent["ts"]: thread},
    )


@contextmanager
def slack_api_server(state: SlackApiState) -> Iterator[str]:
    with serve(_slack_handler(state)) as url:
        yield url + "/api/"
