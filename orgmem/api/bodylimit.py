"""Request body size limit for every route, as pure ASGI middleware.

Why here and not in the routes: FastAPI reads and parses the whole body before any route code or
dependency runs, so a 50 MB body was buffered, parsed and validated before anything could refuse
it (issue 14). This middleware refuses it with 413, in the API's OpenAI error shape:

* with a ``Content-Length`` over the limit at once, before a byte of the body is read;
* without one (chunked, streamed) by counting the bytes as ``receive`` hands them to the app and
  stopping at the first piece past the limit, so at most the limit plus one read is buffered.
  Whatever the app then makes of its cut body (FastAPI answers 400) is dropped for the 413.

The 413 says ``Connection: close``: the rest of that body is not read on this connection. After a
request whose body was large, ``on_large_body`` runs off the event loop (the server trims the heap).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orgmem.errors import error_body

SETTING = "ORGMEM_SERVE_MAX_BODY_BYTES"


class BodyTooLarge(Exception):
    """Raised into the app from ``receive`` once its body has passed the limit."""


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` (413); call ``on_large_body`` after large ones."""

    def __init__(self, app: ASGIApp, max_bytes: int, *, trim_after_bytes: int = 0,
                 on_large_body: Callable[[], object] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.trim_after_bytes = trim_after_bytes
        self.on_large_body = on_large_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send, f"{declared} bytes")
            return
        seen, over, started = 0, False, False

        async def counting_receive() -> Message:
            nonlocal seen, over
            if over:
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    over = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over:  # the app's answer to a cut body; the 413 replaces it
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            try:
                await self.app(scope, counting_receive, guarded_send)
            except Exception:
                if not over or started:
                    raise
            if over and not started:
                await self._refuse(send, f"at least {seen} bytes")
        finally:
            if self.on_large_body is not None and 0 < self.trim_after_bytes <= seen:
                await run_in_threadpool(self.on_large_body)

    async def _refuse(self, send: Send, size: str) -> None:
        message = (f"request body of {size} is over this server's limit of {self.max_bytes} bytes "
                   f"({SETTING})")
        body = json.dumps(error_body(message, "invalid_request_error", "request_too_large")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # counted as it arrives instead
    return None
