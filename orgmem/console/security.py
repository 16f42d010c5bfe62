"""Who is using the console, and whether a form really came from it.

The admin pastes an API key once; it lives in an HttpOnly, SameSite=Strict cookie scoped to
``/console`` and is checked on every request by the same functions the ``/api`` routes use
(``orgmem.api.auth``: lookup, revocation, rate limit, org and role), so the console can do
nothing the key could not do over the API. Forms carry a CSRF token that must equal the one in
a second cookie (double submit): another site can make the browser send the cookies, but it
cannot read them to put the token in the form.

The installation operator (``ORGMEM_SERVE_OPERATOR_KEY``) may log in too and sees every org, but
only reads: on ``/api`` that key creates orgs and nothing else (no org admin route accepts it),
so the console gives it no action either. It carries no group, so it sees only org lineages.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials
from starlette.responses import Response

from orgmem.api.auth import get_state, require_key, require_org_admin
from orgmem.errors import ApiError, NotFoundError, permission_denied
from orgmem.keys import ApiKeyIdentity
from orgmem.lineage.audiences import ORG_AUDIENCE

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


def _cookie_options(request: Request) -> dict[str, Any]:
    return {"path": PATH, "httponly": True, "samesite": "strict", "secure": request.url.scheme == "https"}


# -- the key -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OperatorIdentity:
    """The installation operator in the console: every org, read-only, no group."""

    name: str = "operator"
    role: str = "operator"
    prefix: str = "operator"
    org_slug: str | None = None
    groups: tuple[str, ...] = ()
    is_admin: bool = False
    read_only: bool = True
    actor: str = "console:operator"


ConsoleUser = ApiKeyIdentity | OperatorIdentity

READ_ONLY = ("the operator key only reads in the console (on /api it creates orgs and has no org admin "
             "route); log in with an admin key of org {org!r} to change it")


def _is_operator_key(request: Request, presented: str) -> bool:
    configured = get_state(request).serve.operator_key
    secret = configured.get_secret_value() if configured is not None else ""
    return bool(secret) and hmac.compare_digest(presented.encode(), secret.encode())


def authenticate_key(request: Request, presented: str) -> ConsoleUser:
    """The operator, or the identity of ``presented`` checked exactly as ``/api`` checks a bearer
    key; admin keys only."""
    if _is_operator_key(request, presented):
        request.state.identity = OperatorIdentity()
        return request.state.identity
    identity = require_key(request, HTTPAuthorizationCredentials(scheme="Bearer", credentials=presented))
    if not identity.is_admin:
        raise permission_denied(f"API key {identity.prefix}… is an employee key; the console needs an admin "
                                f"key of org {identity.org_slug!r} (`orgmem keys create "
                                f"{identity.org_slug} --role admin`)")
    return identity


def console_key(request: Request) -> ConsoleUser:
    """Dependency: the logged-in admin key or operator (re-checked on every request, so a revocation
    or a changed operator key is effective at once)."""
    presented = request.cookies.get(KEY_COOKIE)
    if not presented:
        raise LoginRequired()
    return authenticate_key(request, presented)


def console_org_reader(org: str, user: ConsoleUser = Depends(console_key)) -> ConsoleUser:
    """Dependency: who may read the path's org pages: the operator (any org), or an admin key of
    that org (403 for any other org, as on ``/api``)."""
    if isinstance(user, OperatorIdentity):
        return user
    return require_org_admin(org, user)


def console_org_admin(org: str, user: ConsoleUser = Depends(console_key)) -> ApiKeyIdentity:
    """Dependency: an admin key of the path's org, for anything that changes it or uses its keys'
    rights (chat); the operator is refused with why."""
    if isinstance(user, OperatorIdentity):
        raise permission_denied(READ_ONLY.format(org=org))
    return require_org_admin(org, user)


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


# -- audiences -----------------------------------------------------------------------------------

def reachable_audience(user: ConsoleUser, audience: str | None) -> str:
    """The lineage a page or action is about: the org's (default), or a group the key carries. Any
    other group is "not found", word for word as on ``/api`` (a key learns nothing about it)."""
    audience = (audience or "").strip() or ORG_AUDIENCE
    if audience != ORG_AUDIENCE and audience not in user.groups:
        raise NotFoundError(f"org has no group {audience!r} this key may reach")
    return audience
