"""Turning results and failures into console pages: templates, flash messages, error pages.

``ConsoleRoute`` wraps every console route so that a failure (a bad key, another org, an unknown
checkpoint) becomes an HTML page that says what went wrong, instead of the API's JSON error;
requests that ask for JSON (the page's own fetches) still get the API's error shape.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.responses import JSONResponse, RedirectResponse, Response

from orgmem.api.errors import as_api_error, public_error
from orgmem.console import security
from orgmem.errors import ApiError

HERE = Path(__file__).parent
FLASH_COOKIE = "orgmem_console_flash"
SECURITY_HEADERS = {
    # Everything the console loads is its own: no inline script, no CDN, no framing.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                               "form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}



def when(value: datetime | str | None) -> str:
    """A timestamp as ``2026-11-20 02:00:05 UTC`` (stored times are UTC)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["when"] = when


# -- flash messages (one message carried across a redirect) --------------------------------------

def _encode_flash(kind: str, text: str, link: str | None = None) -> str:
    data = {"kind": kind, "text": text, **({"link": link} if link else {})}
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


def _own_page(link: object) -> str | None:
    """A flash link only ever points at a console page (never another site, whatever the cookie says)."""
    if not isinstance(link, str) or not link.startswith(f"{security.PATH}/"):
        return None
    return link if "//" not in link and "\\" not in link else None


def _decode_flash(value: str | None) -> dict[str, str | None] | None:
    if not value:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(value.encode()))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(data, dict) or data.get("kind") not in ("ok", "error"):
        return None
    return {"kind": data["kind"], "text": str(data.get("text", ""))[:2000],
            "link": _own_page(data.get("link"))}


def redirect(request: Request, url: str, flash: tuple[str, ...] | None = None, **kw: Any) -> RedirectResponse:
    """A 303 to ``url`` carrying a flash message ``(kind, text[, link])`` for the next page."""
    response = RedirectResponse(url, status_code=303, **kw)
    if flash is not None:
        response.set_cookie(FLASH_COOKIE, _encode_flash(*flash), path=security.PATH, httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")
    _secure(response)
    return response


# -- pages ---------------------------------------------------------------------------------------

def _secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def render(request: Request, name: str, context: dict[str, Any] | None = None, status: int = 200) -> Response:
    """The template ``name`` with the CSRF token, the pending flash message and the logged-in key."""
    flash = _decode_flash(request.cookies.get(FLASH_COOKIE))
    identity = getattr(request.state, "identity", None)
    ctx = {"csrf_token": security.csrf_token(request), "csrf_field": security.CSRF_FIELD, "flash": flash,
           "identity": identity, "read_only": bool(getattr(identity, "read_only", False)), **(context or {})}
    response = templates.TemplateResponse(request, name, ctx, status_code=status)
    security.remember_csrf(request, response)
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, path=security.PATH)
    return _secure(response)


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def error_response(request: Request, exc: BaseException) -> Response:
    """The page (or JSON error) for a failure raised by a console route or its dependencies."""
    if isinstance(exc, security.LoginRequired):
        if wants_json(request):
            return JSONResponse({"error": {"message": "not logged in to the console"}}, status_code=401)
        return redirect(request, f"{security.PATH}/login")
    if isinstance(exc, RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        exc = as_api_error(ApiError(400, f"invalid request: {where}: {first.get('msg', 'malformed')}"))
    err = public_error(request, exc)  # a 5xx names only the request id; logged there in full
    if wants_json(request):
        return _secure(JSONResponse(err.body(), status_code=err.status, headers=err.headers))
    if err.status == 401:  # the stored key stopped working (revoked, deleted): back to the login form
        response = render(request, "login.html", {"error": str(err)}, status=401)
        security.clear_key_cookie(request, response)
        return response
    response = render(request, "error.html", {"status": err.status, "message": str(err)}, status=err.status)
    for name, value in err.headers.items():
        response.headers[name] = value
    return response


class ConsoleRoute(APIRoute):
    """An ``APIRoute`` whose failures are rendered by ``error_response``."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                return error_response(request, exc)

        return console_handler
