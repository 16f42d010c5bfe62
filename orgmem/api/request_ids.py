"""A request id for every HTTP request, in the ``X-Request-ID`` response header.

A 5xx answer names no internals (see ``errors.py``); its message carries this id instead, and the
server log line with the full detail carries the same id, so an operator finds one from the other.
The id is made here, never taken from the client, so nobody can plant misleading ids in the log.
"""

from __future__ import annotations

import secrets

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
_STATE_KEY = "request_id"


def new_request_id() -> str:
    return f"req_{secrets.token_hex(12)}"


def request_id_of(request: Request) -> str:
    """The id ``RequestIdMiddleware`` gave this request (a fresh one where it did not run)."""
    state = request.scope.setdefault("state", {})
    if _STATE_KEY not in state:
        state[_STATE_KEY] = new_request_id()
    return state[_STATE_KEY]


class RequestIdMiddleware:
    """Plain ASGI (not ``BaseHTTPMiddleware``): the id is in ``scope["state"]``, which the outermost
    500 handler (Starlette's ``ServerErrorMiddleware``, outside every user middleware) also sees."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        scope.setdefault("state", {})[_STATE_KEY] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)
