"""Request authentication and authorisation as FastAPI dependencies.

``require_key``: a valid, unrevoked key (401 otherwise), within its rate limit (429 with
``Retry-After``). ``require_org_admin``: additionally an admin key of the org named in the path
(403 for another org, whether or not it exists, and for employee keys). The key is looked up
on every request, so a revocation is effective at once. ``generation_slot`` (not a dependency: the
slot outlives the route) takes one of the key's in-flight generation slots (429 when all are taken).
"""

from __future__ import annotations

import hmac
import logging

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from orgmem.api.ratelimit import Slot
from orgmem.api.state import ServingState
from orgmem.errors import ApiError, permission_denied, unauthorized
from orgmem.keys import ApiKeyIdentity, authenticate, touch_last_used

logger = logging.getLogger(__name__)

bearer = HTTPBearer(auto_error=False, scheme_name="orgmem API key",
                    description="An org-scoped key from `orgmem keys create ORG --role employee|admin`.")


def get_state(request: Request) -> ServingState:
    return request.app.state.serving


def _presented(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or not credentials.credentials:
        raise unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    return credentials.credentials


def _touch(state: ServingState, identity: ApiKeyIdentity) -> None:
    """Best effort: a busy database must not fail the request over a usage timestamp."""
    try:
        with state.session(write=True) as session:
            touch_last_used(session, identity.key_id)
    except Exception as exc:
        logger.warning("could not record key use: %s", exc, extra={"key": identity.prefix})


def require_key(request: Request,
                credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> ApiKeyIdentity:
    """The caller's key identity; 401 for a missing/unknown/revoked key, 429 over the rate limit."""
    state = get_state(request)
    presented = _presented(credentials)
    with state.session() as session:
        identity = authenticate(session, presented)
    if identity.last_used_stale:
        _touch(state, identity)
    wait = state.limiter.acquire(identity.key_id)
    if wait is not None:
        state.metrics.rate_limited.inc()
        limit = state.serve.rate_limit_per_minute
        raise ApiError(429, f"rate limit of {limit:g} requests/minute for API key {identity.prefix}… "
                       f"exceeded; retry in {wait:.1f} s", "rate_limit_error", "rate_limit_exceeded",
                       headers={"Retry-After": state.limiter.retry_after_header(wait)})
    request.state.identity = identity
    return identity


def generation_slot(state: ServingState, identity: ApiKeyIdentity) -> Slot:
    """A slot among the key's in-flight generations (release it when the generation ends); 429 when
    they are all taken, so one key cannot fill the batch and the queue by itself."""
    slot = state.concurrency.acquire(identity.key_id)
    if slot is None:
        state.metrics.rate_limited.inc()
        limit = state.serve.max_concurrent_per_key
        raise ApiError(429, f"API key {identity.prefix}… already has {limit} generations in flight, this "
                       f"server's limit per key (ORGMEM_SERVE_MAX_CONCURRENT_PER_KEY); retry when one has "
                       f"finished", "rate_limit_error", "concurrency_limit_exceeded",
                       headers={"Retry-After": "1"})
    return slot


def require_org_admin(org: str, identity: ApiKeyIdentity = Depends(require_key)) -> ApiKeyIdentity:
    """An admin key of ``org`` (the path's org)."""
    if org != identity.org_slug:
        raise permission_denied(f"API key {identity.prefix}… of org {identity.org_slug!r} has no access to "
                                f"org {org!r}")
    if not identity.is_admin:
        raise permission_denied(f"API key {identity.prefix}… is an employee key; this route needs an admin "
                                f"key of org {org!r}")
    return identity


def require_operator(request: Request,
                     credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
    """The installation operator (``ORGMEM_SERVE_OPERATOR_KEY``): creating orgs is above any org."""
    state = get_state(request)
    presented = _presented(credentials)
    configured = state.serve.operator_key
    if configured is None or not configured.get_secret_value():
        raise permission_denied("creating orgs over the API needs ORGMEM_SERVE_OPERATOR_KEY on the server; "
                                "or use `orgmem org create SLUG`")
    if not hmac.compare_digest(presented.encode(), configured.get_secret_value().encode()):
        raise permission_denied("this key may not create orgs (it is not the operator key)")
    return "api:operator"
