"""The OpenAPI spec says what errors really look like: OpenAI's error object, never FastAPI's 422.

``errors.py`` answers every failure as ``{"error": {message, type, param, code}}`` and validation
failures as 400, but FastAPI documents a 422 ``HTTPValidationError`` on every route. A client
generated from the spec, and the schemathesis run in CI that checks each response against it,
need the truth: every operation gets a ``default`` response with the error schema, and the 422
that never happens is removed.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

ERROR_SCHEMA = "ErrorResponse"

_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        },
    },
}
_DEFAULT = {
    "description": "An error in OpenAI's shape (400 invalid request, 401, 403, 404, 409, 429, 5xx); a 5xx "
                   "names only a request id, also sent as the X-Request-ID header.",
    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}},
}
_UNUSED = ("HTTPValidationError", "ValidationError")


def error_responses(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with the error schema as every operation's default response and no 422 (in place)."""
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            responses.setdefault("default", _DEFAULT)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for name in _UNUSED:
        schemas.pop(name, None)
    schemas[ERROR_SCHEMA] = _ERROR
    return spec


def install_error_responses(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and ``/openapi.json``) document the errors as they are sent."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = error_responses(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
