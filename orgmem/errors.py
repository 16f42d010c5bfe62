"""Errors a user can act on. The CLI prints their message and exits non-zero; the API maps them."""

from __future__ import annotations


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
