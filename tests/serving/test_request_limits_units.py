"""The request limits' parts in isolation: the body-size middleware on a fake ASGI app, the per-key
slot counter, the engine's per-row generation cap with an injected clock, ``malloc_trim``, settings."""

from __future__ import annotations

import asyncio
import json
import platform
import sys
import threading
import time

import pytest

from orgmem.api import memtrim
from orgmem.api.bodylimit import BodySizeLimit
from orgmem.api.ratelimit import ConcurrencyLimiter
from orgmem.serving.config import ServeSettings
from orgmem.serving.engine import Failed, Finished, GenerationEngine, GenerationRequest
from orgmem.serving.sampling import SamplingParams

# -- body size middleware --------------------------------------------------------------------------


class Receiver:
    """An ASGI ``receive`` handing out body pieces, counting how often it was asked."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces, self.calls = list(pieces), 0

    async def __call__(self) -> dict:
        self.calls += 1
        if self.pieces:
            piece = self.pieces.pop(0)
            return {"type": "http.request", "body": piece, "more_body": bool(self.pieces)}
        return {"type": "http.disconnect"}


async def read_body(receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


class EchoApp:
    """Reads the whole body and echoes it; like FastAPI, turns a failed read into its own 400."""

    def __init__(self) -> None:
        self.called = False

    async def __call__(self, scope, receive, send) -> None:
        self.called = True
        try:
            status, body = 200, await read_body(receive)
        except Exception:
            status, body = 400, b"There was an error parsing the body"
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": body})


def run(middleware, pieces: list[bytes], headers: dict[str, str] | None = None):
    receive, sent = Receiver(pieces), []

    async def send(message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/completions",
             "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]}
    asyncio.run(middleware(scope, receive, send))
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1, sent
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return starts[0], body, receive


def test_declared_length_over_the_limit_never_reaches_the_app():
    app = EchoApp()
    start, body, receive = run(BodySizeLimit(app, max_bytes=10), [b"x" * 11], {"content-length": "11"})
    assert start["status"] == 413 and not app.called and receive.calls == 0
    assert (b"connection", b"close") in start["headers"]
    error = json.loads(body)["error"]
    assert error["code"] == "request_too_large" and "10 bytes" in error["message"]
    assert "ORGMEM_SERVE_MAX_BODY_BYTES" in error["message"]


def test_undeclared_body_is_read_only_up_to_the_limit():
    app = EchoApp()
    start, body, receive = run(BodySizeLimit(app, max_bytes=10), [b"abcd"] * 10)
    assert start["status"] == 413  # the app's own 400 for the cut body is replaced
    assert receive.calls == 3  # 4 + 4 + 4 > 10: the fourth piece is never asked for
    assert "at least 12 bytes" in json.loads(body)["error"]["message"]


def test_body_within_the_limit_passes_unchanged():
    start, body, _ = run(BodySizeLimit(EchoApp(), max_bytes=10), [b"abcd", b"efgh", b"ij"],
                         {"content-length": "10"})
    assert start["status"] == 200 and body == b"abcdefghij"


def test_a_wrong_content_length_is_still_counted():
    start, _, receive = run(BodySizeLimit(EchoApp(), max_bytes=10), [b"abcd"] * 10, {"content-length": "3"})
    assert start["status"] == 413 and receive.calls == 3


@pytest.mark.parametrize("pieces, trimmed", [([b"x" * 9], 1), ([b"x" * 7], 0), ([b"x" * 40] * 3, 1)])
def test_memory_is_trimmed_after_a_large_body(pieces, trimmed):
    calls: list[int] = []
    limit = BodySizeLimit(EchoApp(), max_bytes=100, trim_after_bytes=8, on_large_body=lambda: calls.append(1))
    run(limit, pieces)
    assert len(calls) == trimmed


def test_other_scopes_pass_through():
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    asyncio.run(BodySizeLimit(app, max_bytes=1)({"type": "lifespan"}, None, None))
    assert seen == ["lifespan"]


# -- per-key slots ---------------------------------------------------------------------------------

def test_concurrency_limiter_counts_slots_per_key():
    limiter = ConcurrencyLimiter(per_key=2)
    first, second = limiter.acquire(1), limiter.acquire(1)
    assert first is not None and second is not None
    assert limiter.acquire(1) is None  # full
    assert limiter.acquire(2) is not None  # another key has its own slots
    first.release()
    first.release()  # idempotent: a second release frees nothing more
    assert limiter.in_flight(1) == 1
    assert limiter.acquire(1) is not None and limiter.acquire(1) is None
    off = ConcurrencyLimiter(per_key=0)
    assert all(off.acquire(1) is not None for _ in range(100)) and not off.enabled


# -- generation time cap ---------------------------------------------------------------------------

def wait_for(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def submit(engine: GenerationEngine, prompt: list[int]) -> tuple[threading.Event, dict]:
    done, box = threading.Event(), {}

    def on_event(event) -> None:
        if isinstance(event, Finished | Failed):
            box["end"] = event
            done.set()

    never_ending = SamplingParams(max_tokens=100_000, min_tokens=100_000, temperature=0)
    engine.submit(GenerationRequest(prompt_ids=prompt, params=never_ending, memory=None, on_event=on_event))
    return done, box


def test_generation_cap_ends_each_row_at_its_own_deadline(tiny_base):
    now = [0.0]
    engine = GenerationEngine(tiny_base, max_generation_s=10.0, clock=lambda: now[0]).start()
    try:
        a_done, a = submit(engine, [5, 6, 7])
        wait_for(lambda: engine.active == 1, "the first row to be admitted")  # at t=0: ends by t=10
        now[0] = 5.0
        b_done, b = submit(engine, [8, 9])
        wait_for(lambda: engine.active == 2, "the second row to join the batch")  # at t=5: ends by t=15
        now[0] = 12.0
        assert a_done.wait(30)
        assert a["end"].reason == "length" and 0 < a["end"].completion_tokens < 100_000
        steps = engine.stats.steps
        wait_for(lambda: engine.stats.steps > steps + 3, "the other row to keep decoding")
        assert not b_done.is_set() and engine.active == 1
        now[0] = 15.0
        assert b_done.wait(30)
        assert b["end"].reason == "length" and b["end"].text is not None
    finally:
        engine.stop()


def test_no_cap_by_default(tiny_base):
    assert GenerationEngine(tiny_base).max_generation_s is None


# -- malloc_trim -----------------------------------------------------------------------------------

def test_trim_is_safe_everywhere_and_available_on_glibc():
    memtrim.trim()  # never raises, whatever the platform
    on_glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert memtrim.available() == on_glibc


# -- settings --------------------------------------------------------------------------------------

def test_limit_settings_defaults_and_environment(monkeypatch):
    serve = ServeSettings()
    assert serve.max_body_bytes == 8 * 1024 * 1024
    assert serve.max_prompt_chars is None  # 16 characters per token of the base's context
    assert serve.max_concurrent_per_key == 4
    assert serve.max_generation_seconds == 120.0
    assert serve.trim_after_body_bytes == 1024 * 1024
    for name, value in (("MAX_BODY_BYTES", "1024"), ("MAX_PROMPT_CHARS", "5000"),
                        ("MAX_CONCURRENT_PER_KEY", "7"), ("MAX_GENERATION_SECONDS", "30"),
                        ("TRIM_AFTER_BODY_BYTES", "0")):
        monkeypatch.setenv(f"ORGMEM_SERVE_{name}", value)
    serve = ServeSettings()
    assert (serve.max_body_bytes, serve.max_prompt_chars, serve.max_concurrent_per_key,
            serve.max_generation_seconds, serve.trim_after_body_bytes) == (1024, 5000, 7, 30.0, 0)
