"""Who is using the console, and whether a form really came from it.

The admin pastes an API key once; it lives in an HttpOnly, SameSite=Strict cookie scoped to
``/console`` and is checked on every request by the same functions the ``/api`` routes use
(``orgmem.serving.auth``: lookup, revocation, rate limit, org and role), so the console can do
nothing the key could not do over the API. Forms carry a CSRF token that must equal the one in
a second cookie (double submit): another site can make the browser send the cookies, but it
cannot read them to put the token in the form.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import parse_qsl

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials
from starlette.responses import Response

from orgmem.keys import ApiKeyIdentity
from orgmem.serving.auth import require_key, require_org_admin
from orgmem.serving.errors import ApiError, permission_denied

PATH = "/console"
KEY_COOKIE = "orgmem_console_key"
CSRF_COOKIE = "orgmem_console_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
MAX_FORM_BYTES = 64 * 1024


class LoginRequired(Exception):
    """No key cookie: the browser is sent to the login page (not an error worth a message)."""


class CsrfError(ApiError):
    def __init__(self) -> None:
        super().__init__(403, "the form's CSRF token is missing or does not match this browser's; "
                         "reload the page and submit it again", "permission_error", "csrf_failed")


def _cookie_options(request: Request) -> dict[str, object]:
    return {"path": PATH, "httponly": True, "samesite": "strict", "secure": request.url.scheme == "https"}


# -- the key -------------------------------------------------------------------------------------

def authenticate_key(request: Request, presented: str) -> ApiKeyIdentity:
    """The identity of ``presented`` checked exactly as ``/api`` checks a bearer key; admin keys only."""
    identity = require_key(request, HTTPAuthorizationCredentials(scheme="Bearer", credentials=presented))
    if not identity.is_admin:
        raise permission_denied(f"API key {identity.prefix}… is an employee key; the console needs an admin "
                                f"key of org {identity.org_slug!r} (`orgmem keys create "
                                f"{identity.org_slug} --role admin`)")
    return identity


def console_key(request: Request) -> ApiKeyIdentity:
    """Dependency: the logged-in admin key (re-checked on every request, so revocation is immediate)."""
    presented = request.cookies.get(KEY_COOKIE)
    if not presented:
        raise LoginRequired()
    return authenticate_key(request, presented)


def console_org_admin(org: str, identity: ApiKeyIdentity = Depends(console_key)) -> ApiKeyIdentity:
    """Dependency: an admin key of the path's org (403 for any other org, as on ``/api``)."""
    return require_org_admin(org, identity)


def set_key_cookie(request: Request, response: Response, key: str) -> None:
    response.set_cookie(KEY_COOKIE, key, **_cookie_options(request))


def clear_key_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(KEY_COOKIE, **_cookie_options(request))


# -- CSRF ----------------------------------------------------------------------------------------

def csrf_token(request: Request) -> str:
    """This browser's token (from its cookie, or a new one that ``remember_csrf`` will set)."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not token:
        token = request.state.new_csrf = secrets.token_urlsafe(32)
    return token


def remember_csrf(request: Request, response: Response) -> None:
    """Set the token cookie if this request created the token."""
    token = getattr(request.state, "new_csrf", None)
    if token:
        response.set_cookie(CSRF_COOKIE, token, **_cookie_options(request))


def check_csrf(request: Request, presented: str | None) -> None:
    """Refuse a state-changing request whose token is not this browser's cookie token."""
    expected = request.cookies.get(CSRF_COOKIE)
    if not expected or not presented or not hmac.compare_digest(expected.encode(), presented.encode()):
        raise CsrfError()


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form body (what the console's forms post), without needing python-multipart."""
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != "application/x-www-form-urlencoded":
        raise ApiError(415, f"console forms are posted as application/x-www-form-urlencoded, not {kind!r}")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ApiError(413, f"form of {len(body)} bytes is over the console's limit of {MAX_FORM_BYTES}")
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


async def checked_form(request: Request) -> dict[str, str]:
    """The form, after its CSRF token was checked."""
    form = await read_form(request)
    check_csrf(request, form.get(CSRF_FIELD))
    return form
