"""Every error the API returns, in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

The official ``openai`` client turns that shape into its typed exceptions (``AuthenticationError``
for 401, ``PermissionDeniedError`` for 403, ``RateLimitError`` for 429...), so clients built on it
get the same behaviour as against OpenAI. ``OrgmemError`` subclasses map to statuses here, once.

A failure of the server's own infrastructure (corrupt or missing stored object, store or database
down, any unexpected exception) answers a generic message naming the request id; the full detail
goes only to the server log, under that id. Other messages are scrubbed of internal locations.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from orgmem.api.redact import scrub_urls
from orgmem.api.request_ids import REQUEST_ID_HEADER, request_id_of
from orgmem.errors import (
    ApiError,
    ConflictError,
    IncompatibleBaseError,
    IntegrityError,
    NotFoundError,
    OrgmemError,
)
from orgmem.keys import AuthenticationError
from orgmem.serving.engine import EngineOverloadedError
from orgmem.store import ObjectNotFoundError, StoreError, StoreUnavailableError

logger = logging.getLogger(__name__)


_STATUS: list[tuple[type[BaseException], int, str, str]] = [
    (AuthenticationError, 401, "authentication_error", "invalid_api_key"),
    (NotFoundError, 404, "not_found_error", "not_found"),
    (IncompatibleBaseError, 409, "invalid_request_error", "incompatible_base"),
    (ConflictError, 409, "invalid_request_error", "conflict"),
    (EngineOverloadedError, 503, "server_error", "overloaded"),
    (OrgmemError, 400, "invalid_request_error", "invalid_request"),
]

#: Failures of the server's own infrastructure (checked first): the client learns the kind of failure
#: and a request id, never the message, which names store URLs, endpoints, files, checksums and SQL.
_INTERNAL: list[tuple[type[BaseException], int, str, str]] = [
    (IntegrityError, 500, "integrity_error", "stored data failed an integrity check"),
    (ObjectNotFoundError, 500, "integrity_error", "an object the request needs is missing from the store"),
    (StoreUnavailableError, 503, "store_unavailable", "the object store is unreachable; retry shortly"),
    (StoreError, 500, "store_error", "the object store refused the request"),
    (OperationalError, 503, "database_unavailable", "the database is unavailable; retry shortly"),
    # the database refused a value of the request (PostgreSQL: a NUL in text, an integer past 64 bits)
    (DataError, 400, "invalid_value", "a value of the request cannot be stored (a NUL character, or a "
                                      "number out of range)"),
]


def internal_error(status: int, code: str, what: str, request_id: str | None) -> ApiError:
    """The generic answer to an infrastructure failure: what kind, and where the detail is."""
    where = f" under request id {request_id}" if request_id else ""
    type_ = "server_error" if status >= 500 else "invalid_request_error"
    return ApiError(status, f"{what}; the server log has the details{where}", type_, code)


def as_api_error(exc: BaseException, *, request_id: str | None = None,
                 redact: Callable[[str], str] = scrub_urls) -> ApiError:
    """The public ``ApiError`` for any exception: infrastructure and unknown failures become a
    generic 5xx naming ``request_id``; the messages of the rest pass through ``redact``."""
    if isinstance(exc, ApiError):
        return ApiError(exc.status, redact(str(exc)), exc.type, exc.code, exc.param, exc.headers)
    for cls, status, code, what in _INTERNAL:
        if isinstance(exc, cls):
            return internal_error(status, code, what, request_id)
    for cls, status, type_, code in _STATUS:
        if isinstance(exc, cls):
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return ApiError(status, redact(str(exc)), type_, code, headers=headers)
    return internal_error(500, "internal_error", "internal error", request_id)


def _redactor(request: Request) -> Callable[[str], str]:
    serving = getattr(request.app.state, "serving", None)
    return getattr(serving, "redact", None) or scrub_urls


def public_error(request: Request, exc: BaseException) -> ApiError:
    """``as_api_error`` for a request; a 5xx is logged here with its full detail and request id."""
    request_id = request_id_of(request)
    err = as_api_error(exc, request_id=request_id, redact=_redactor(request))
    if err.status >= 500 or isinstance(exc, DataError):  # the answers that point to the log
        log_failure(exc, request_id, path=request.url.path, method=request.method)
    return err


def log_failure(exc: BaseException, request_id: str | None, **context: Any) -> None:
    """The structured log line an operator finds by the request id of a 5xx answer."""
    logger.error("request failed: %s: %s", type(exc).__name__, exc, exc_info=exc,
                 extra={"request_id": request_id, "error_type": type(exc).__name__, **context})


def _response(err: ApiError, request: Request) -> JSONResponse:
    headers = {**err.headers, REQUEST_ID_HEADER: request_id_of(request)}
    return JSONResponse(err.body(), status_code=err.status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Route every failure through ``public_error`` so all responses share one shape."""

    @app.exception_handler(OrgmemError)
    async def _orgmem(request: Request, exc: OrgmemError) -> JSONResponse:
        return _response(public_error(request, exc), request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"invalid request: {where or 'body'}: {first.get('msg', 'malformed')}"
        return _response(ApiError(400, message, param=where or None, code="invalid_request"), request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        err = ApiError(exc.status_code, str(exc.detail), type_, headers=dict(exc.headers or {}))
        return _response(public_error(request, err), request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # runs in Starlette's outermost middleware, past RequestIdMiddleware: the id is set here
        return _response(public_error(request, exc), request)
