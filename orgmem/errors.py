"""Errors a user can act on. The CLI prints their message and exits non-zero; the API maps them."""

from __future__ import annotations

import re
from typing import Any


class OrgmemError(Exception):
    """Base class: the message names the thing that is wrong (org, checkpoint, source, object)."""

    exit_code = 1


class NotFoundError(OrgmemError):
    """An org, checkpoint, source, job or object that does not exist."""

    exit_code = 2


class ConflictError(OrgmemError):
    """The request contradicts current state (duplicate slug, non-ancestor rollback, foreign org)."""

    exit_code = 3


class IntegrityError(OrgmemError):
    """Stored data does not match its recorded checksum or shape (corrupt checkpoint)."""

    exit_code = 4


class IncompatibleBaseError(OrgmemError):
    """A memory state was made for another base model than the one it is loaded onto."""

    exit_code = 5


class DistributedTrainingError(OrgmemError):
    """A rank of a data-parallel consolidation died, failed or timed out; nothing of the attempt is
    used. Transient by default (a killed process, an out-of-memory GPU): workers retry the job."""

    def __init__(
        self, message: str, *, rank: int | None = None, returncode: int | None = None, log_dir: object = None
    ) -> None:
        super().__init__(message)
        self.rank, self.returncode, self.log_dir = rank, returncode, log_dir


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


def model_not_found(model: str) -> ApiError:
    """One answer for a model that does not exist and one the key may not see (no enumeration)."""
    return ApiError(404, f"model {model!r} not found for this key; `GET /v1/models` lists the ones it "
                         "may use", "not_found_error", "model_not_found", param="model")


def unauthorized(message: str) -> ApiError:
    return ApiError(401, message, "authentication_error", "invalid_api_key",
                    headers={"WWW-Authenticate": "Bearer"})


def matching_name(name: object, pattern: re.Pattern[str], refusal: type[OrgmemError], message: str) -> str:
    """``name`` if it is a string ``pattern`` matches; else ``refusal(message)``. Names (slugs, source
    and group names) land in URLs, object keys and headers, so each kind keeps to its own alphabet."""
    if not isinstance(name, str) or not pattern.match(name):
        raise refusal(message)
    return name
