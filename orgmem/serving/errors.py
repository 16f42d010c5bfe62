"""Every error the API returns, in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

The official ``openai`` client turns that shape into its typed exceptions (``AuthenticationError``
for 401, ``PermissionDeniedError`` for 403, ``RateLimitError`` for 429...), so clients built on it
get the same behaviour as against OpenAI. ``OrgmemError`` subclasses map to statuses here, once.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from orgmem.errors import ConflictError, IncompatibleBaseError, IntegrityError, NotFoundError, OrgmemError
from orgmem.keys import AuthenticationError
from orgmem.serving.engine import EngineOverloadedError

logger = logging.getLogger(__name__)


class ApiError(OrgmemError):
    """An error with its HTTP status and OpenAI error type (and optional headers)."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.type, self.code, self.param = status, type_, code, param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(str(self), self.type, self.code, self.param)


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def permission_denied(message: str) -> ApiError:
    return ApiError(403, message, "permission_error", "permission_denied")


def unauthorized(message: str) -> ApiError:
    return ApiError(401, message, "authentication_error", "invalid_api_key",
                    headers={"WWW-Authenticate": "Bearer"})


_STATUS: list[tuple[type[BaseException], int, str, str]] = [
    (AuthenticationError, 401, "authentication_error", "invalid_api_key"),
    (NotFoundError, 404, "not_found_error", "not_found"),
    (IncompatibleBaseError, 409, "invalid_request_error", "incompatible_base"),
    (ConflictError, 409, "invalid_request_error", "conflict"),
    (IntegrityError, 500, "server_error", "integrity_error"),
    (EngineOverloadedError, 503, "server_error", "overloaded"),
    (OrgmemError, 400, "invalid_request_error", "invalid_request"),
]


def as_api_error(exc: BaseException) -> ApiError:
    """The ``ApiError`` for any exception (unknown ones become a 500 that names no internals)."""
    if isinstance(exc, ApiError):
        return exc
    for cls, status, type_, code in _STATUS:
        if isinstance(exc, cls):
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return ApiError(status, str(exc), type_, code, headers=headers)
    return ApiError(500, f"internal error ({type(exc).__name__}); see the server log", "server_error",
                    "internal_error")


def _response(err: ApiError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Route every failure through ``as_api_error`` so all responses share one shape."""

    @app.exception_handler(OrgmemError)
    async def _orgmem(request: Request, exc: OrgmemError) -> JSONResponse:
        err = as_api_error(exc)
        if err.status >= 500:
            logger.error("request failed: %s", exc, extra={"path": request.url.path})
        return _response(err)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"invalid request: {where or 'body'}: {first.get('msg', 'malformed')}"
        return _response(ApiError(400, message, param=where or None, code="invalid_request"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return _response(ApiError(exc.status_code, str(exc.detail), type_, headers=dict(exc.headers or {})))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", extra={"path": request.url.path})
        return _response(as_api_error(exc))
