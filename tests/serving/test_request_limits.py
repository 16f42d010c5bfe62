"""Issue 14 finding 3: one request must not stall the server. Against a real server (uvicorn): bodies
over the size limit are refused with 413 before they are read (Content-Length) or as soon as they
pass it (chunked); prompts over the size limit are refused before the tokenizer sees them; a key has
at most N generations in flight; a reply stops at the generation time cap.

Nothing here waits for a duration to pass: the engine is held still with a gate in ``on_step``
and the tests poll for states with a generous deadline."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import pytest

from orgmem.app import create_app
from orgmem.keys import authenticate
from orgmem.serving.config import ServeSettings
from tests.serving.support import PREFIX

BODY_LIMIT = 16_384
PROMPT_LIMIT = 2_000
PER_KEY = 2


def limited_serve(**overrides) -> ServeSettings:
    values = dict(cache_size=4, max_batch=16, rate_limit_per_minute=100_000, rate_limit_burst=10_000,
                  default_max_tokens=4, max_body_bytes=BODY_LIMIT, max_prompt_chars=PROMPT_LIMIT,
                  max_concurrent_per_key=PER_KEY)
    return ServeSettings(**{**values, **overrides})


@pytest.fixture(scope="module")
def limited(deployment, tiny_base, run_server):
    """A server with small limits on the deployment's database: (app, url)."""
    app = create_app(deployment.settings, limited_serve(), base=tiny_base)
    return app, run_server(app)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def key_id(deployment, name: str) -> int:
    with deployment.state.session() as session:
        return authenticate(session, deployment.keys[name]).key_id


def auth(deployment, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {deployment.keys[name]}"}


# -- raw HTTP: what an attacker sends, byte by byte ------------------------------------------------

def raw_exchange(url: str, head: str, chunks: Iterable[bytes] = ()) -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` (and ``chunks``) on a fresh connection and read one response; the body that the
    head announces is never completed, so a server that waits for it times out here."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=20) as sock:
        sock.sendall(head.encode("latin-1"))
        for chunk in chunks:
            sock.sendall(chunk)
        data = b""
        while b"\r\n\r\n" not in data:
            part = sock.recv(65536)
            assert part, f"connection closed before a response: {data!r}"
            data += part
        top, _, body = data.partition(b"\r\n\r\n")
        lines = top.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        while len(body) < int(headers.get("content-length", "0")):
            part = sock.recv(65536)
            if not part:
                break
            body += part
    return int(lines[0].split()[1]), headers, body


def post_head(deployment, path: str, extra: str) -> str:
    return (f"POST {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {deployment.keys['acme-employee']}"
            f"\r\nContent-Type: application/json\r\n{extra}\r\n")


def chunked(piece: bytes) -> bytes:
    return f"{len(piece):x}\r\n".encode() + piece + b"\r\n"


def assert_too_large(status: int, body: bytes) -> None:
    assert status == 413
    error = json.loads(body)["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "request_too_large"
    assert str(BODY_LIMIT) in error["message"] and "ORGMEM_SERVE_MAX_BODY_BYTES" in error["message"]


def test_body_over_the_limit_by_content_length_is_413_before_it_is_read(deployment, limited, monkeypatch):
    app, url = limited
    authenticated: list[int] = []
    real = app.state.serving.limiter.acquire
    monkeypatch.setattr(app.state.serving.limiter, "acquire", lambda k: authenticated.append(k) or real(k))
    # 50 MB announced, none of it sent: the answer must come from the headers alone
    status, headers, body = raw_exchange(url, post_head(deployment, "/v1/completions",
                                                        "Content-Length: 50000000\r\n"))
    assert_too_large(status, body)
    assert headers.get("connection") == "close"  # the rest of the body is not read on this connection
    assert authenticated == []  # the route (and its key check) never ran


def test_chunked_body_over_the_limit_is_413_as_it_arrives(deployment, limited):
    _, url = limited
    opening = b'{"model": "acme", "prompt": "'
    pieces = [opening + b"a" * (4096 - len(opening))] + [b"a" * 4096] * 4  # 20 KiB, never finished
    status, headers, body = raw_exchange(url, post_head(deployment, "/v1/completions",
                                                        "Transfer-Encoding: chunked\r\n"),
                                         [chunked(p) for p in pieces])
    assert_too_large(status, body)
    assert headers.get("connection") == "close"


def test_body_limit_covers_every_route(deployment, limited):
    _, url = limited
    status, _, body = raw_exchange(url, post_head(deployment, "/api/orgs/acme/sources",
                                                  "Content-Length: 20000\r\n"))
    assert_too_large(status, body)


def test_body_under_the_limit_is_served(deployment, limited):
    _, url = limited
    resp = httpx.post(f"{url}/v1/completions", headers=auth(deployment, "acme-employee"), timeout=60,
                      json={"model": "acme", "prompt": PREFIX, "max_tokens": 2, "user": "x" * 8000})
    assert resp.status_code == 200, resp.text


# -- prompt size, before tokenising ----------------------------------------------------------------

class SpyTokenizer:
    """The engine's tokenizer, recording every use."""

    def __init__(self, real) -> None:
        self.real, self.uses = real, []

    def __getattr__(self, name: str):
        self.uses.append(name)
        return getattr(self.real, name)

    def __call__(self, *args, **kwargs):
        self.uses.append("__call__")
        return self.real(*args, **kwargs)

    def __len__(self) -> int:
        self.uses.append("__len__")
        return len(self.real)


@pytest.fixture
def spy(limited, monkeypatch) -> Iterator[SpyTokenizer]:
    engine = limited[0].state.serving.engine
    tokenizer = SpyTokenizer(engine.tokenizer)
    monkeypatch.setattr(engine, "tokenizer", tokenizer)
    yield tokenizer


@pytest.mark.parametrize("route, body", [
    ("completions", {"prompt": "z" * (PROMPT_LIMIT + 1)}),
    ("chat/completions", {"messages": [{"role": "system", "content": "y" * (PROMPT_LIMIT // 2)},
                                       {"role": "user", "content": [{"type": "text",
                                                                     "text": "z" * (PROMPT_LIMIT // 2)}]},
                                       {"role": "user", "content": "!"}]}),
])
def test_prompt_over_the_limit_is_refused_before_tokenising(deployment, limited, spy, route, body):
    _, url = limited
    resp = httpx.post(f"{url}/v1/{route}", headers=auth(deployment, "acme-employee"), timeout=60,
                      json={"model": "acme", "max_tokens": 2, **body})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "context_length_exceeded"
    assert str(PROMPT_LIMIT) in error["message"] and "ORGMEM_SERVE_MAX_PROMPT_CHARS" in error["message"]
    assert spy.uses == []  # the tokenizer was never reached


def test_prompt_under_the_limit_is_tokenised(deployment, limited, spy):
    """The spy sees an accepted prompt's tokenisation (so its silence above means something)."""
    _, url = limited
    resp = httpx.post(f"{url}/v1/completions", headers=auth(deployment, "acme-employee"), timeout=60,
                      json={"model": "acme", "prompt": "z" * PROMPT_LIMIT, "max_tokens": 100})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "context_length_exceeded"
    assert "__call__" in spy.uses
    assert "2048" in resp.json()["error"]["message"]  # 2000 + 100 tokens: the token check still runs


# -- concurrent generations per key ----------------------------------------------------------------

@pytest.fixture
def gate(limited, monkeypatch) -> Iterator[threading.Event]:
    """Hold the engine after its next forward until the event is set (opened at teardown too)."""
    engine = limited[0].state.serving.engine
    opened = threading.Event()
    real = engine.on_step

    def held(rows: int, seconds: float) -> None:
        opened.wait(60)
        real(rows, seconds)

    monkeypatch.setattr(engine, "on_step", held)
    try:
        yield opened
    finally:
        opened.set()


def complete(url: str, headers: dict[str, str], **body) -> httpx.Response:
    payload = {"model": "acme", "prompt": PREFIX, "max_tokens": 3, "temperature": 0, **body}
    return httpx.post(f"{url}/v1/completions", headers=headers, json=payload, timeout=60)


def test_concurrent_generations_per_key_are_limited(deployment, limited, gate):
    app, url = limited
    slots = app.state.serving.concurrency
    acme, globex = key_id(deployment, "acme-employee"), key_id(deployment, "globex-employee")
    with ThreadPoolExecutor(4) as pool:
        held = [pool.submit(complete, url, auth(deployment, "acme-employee")) for _ in range(PER_KEY)]
        wait_for(lambda: slots.in_flight(acme) == PER_KEY, "the key's requests to be in flight")
        over = complete(url, auth(deployment, "acme-employee"))
        assert over.status_code == 429
        assert int(over.headers["retry-after"]) >= 1
        error = over.json()["error"]
        assert error["type"] == "rate_limit_error" and error["code"] == "concurrency_limit_exceeded"
        assert f"{PER_KEY}" in error["message"] and "ORGMEM_SERVE_MAX_CONCURRENT_PER_KEY" in error["message"]
        other = pool.submit(complete, url, auth(deployment, "globex-employee"), model="globex")
        wait_for(lambda: slots.in_flight(globex) == 1, "another key's request to be admitted")
        gate.set()
        assert [f.result().status_code for f in held] == [200] * PER_KEY
        assert other.result().status_code == 200
    assert slots.in_flight(acme) == 0 and slots.in_flight(globex) == 0  # released on completion
    assert complete(url, auth(deployment, "acme-employee")).status_code == 200


def test_failed_requests_release_their_slot(deployment, limited):
    _, url = limited
    for _ in range(PER_KEY + 1):
        assert complete(url, auth(deployment, "acme-employee"), model="globex").status_code == 404
        assert complete(url, auth(deployment, "acme-employee"), max_tokens=10**6).status_code == 400
    assert complete(url, auth(deployment, "acme-employee")).status_code == 200


def test_stream_disconnect_releases_the_slot(deployment, limited, gate):
    app, url = limited
    slots, acme = app.state.serving.concurrency, key_id(deployment, "acme-employee")
    body = {"model": "acme", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 50,
            "stream": True}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=60,
                      headers=auth(deployment, "acme-employee")) as resp:
        assert resp.status_code == 200
        # the iterator is kept: a dropped one is closed at once, and closing it closes the connection
        # (httpcore), a disconnect that raced the next assertion and freed the slot 1 run in 5
        lines = resp.iter_lines()
        assert next(lines).startswith("data: ")  # the role chunk; the engine is held
        assert slots.in_flight(acme) == 1
    # the engine is still held: only the disconnect can have freed the slot
    wait_for(lambda: httpx.get(f"{url}/healthz").status_code == 200 and slots.in_flight(acme) == 0,
             "the disconnect to release the slot")
    gate.set()
    assert complete(url, auth(deployment, "acme-employee")).status_code == 200


# -- generation time cap ---------------------------------------------------------------------------

def test_generation_time_cap_ends_the_reply_with_length(deployment, tiny_base, run_server):
    app = create_app(deployment.settings, limited_serve(max_generation_seconds=1e-6), base=tiny_base)
    url = run_server(app)
    resp = complete(url, auth(deployment, "acme-employee"), max_tokens=40, min_tokens=40)
    assert resp.status_code == 200, resp.text
    choice = resp.json()["choices"][0]
    assert choice["finish_reason"] == "length"
    assert resp.json()["usage"]["completion_tokens"] == 1  # the prefill's token, then the cap
