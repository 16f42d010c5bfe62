"""The object-store interface: immutable blobs addressed by key, with sha256 checksums.

Backends (local folder, S3) are chosen by URL scheme in ``orgmem.store.open_store``.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from orgmem.errors import IntegrityError, NotFoundError, OrgmemError


@dataclass(frozen=True)
class ObjectInfo:
    """What the database records about one stored object."""

    key: str
    sha256: str
    size: int


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class InvalidKeyError(OrgmemError):
    """A key that could name something outside the store (``..``, absolute, empty segment)."""


class StoreError(OrgmemError):
    """The store failed in a way the caller cannot fix (its messages name endpoints: operator only)."""


class StoreUnavailableError(StoreError):
    """The store could not be reached (connection refused, timeout): retrying later may work."""


class StoreAccessError(StoreError):
    """The store refused us (wrong credentials, no permission): fixing configuration is needed."""


class ObjectNotFoundError(NotFoundError):
    """A stored object (or the bucket) is missing: for the server's own keys, a fault of the store."""


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative '/'-path; every backend refuses the same keys.

    Refusing rather than normalising means a key maps to exactly one object on every backend, and a
    key built from user input can never reach outside the store's root or prefix.
    """
    if not isinstance(key, str) or not key:
        raise InvalidKeyError(f"object key {key!r} is empty or not a string")
    if key.startswith("/") or "\\" in key or "\x00" in key:
        raise InvalidKeyError(f"object key {key!r} must be a relative '/'-separated path")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidKeyError(f"object key {key!r} has an empty, '.' or '..' segment")
    return key


def validate_prefix(prefix: str) -> str:
    """A listing prefix: '' (everything), or a key-like string that may end in '/' or mid-segment."""
    try:
        if prefix:
            validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    except InvalidKeyError as exc:
        raise InvalidKeyError(f"listing prefix {prefix!r} is not a safe key prefix: {exc}") from None
    return prefix


def check_sha256(key: str, data: bytes, expected_sha256: str | None, where: str) -> None:
    """Raise IntegrityError naming the key and both checksums when ``data`` is not what was recorded."""
    if expected_sha256 is None:
        return
    actual = sha256_hex(data)
    if actual != expected_sha256.lower():
        raise IntegrityError(
            f"object {key!r} in {where} is corrupt: expected sha256 {expected_sha256}, got {actual} "
            f"({len(data)} bytes)"
        )


class ObjectStore(ABC):
    """Keys are '/'-separated relative paths such as ``orgs/acme/checkpoints/<id>/manifest.json``."""

    url: str

    @abstractmethod
    def put(self, key: str, data: bytes) -> ObjectInfo:
        """Write ``data`` at ``key``, read it back, verify size and sha256, return its info."""

    @abstractmethod
    def get(self, key: str, expected_sha256: str | None = None) -> bytes:
        """Read ``key``; raise NotFoundError if missing, IntegrityError if the checksum differs."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """All keys under ``prefix`` (sha256 may be '' when the backend cannot give it cheaply)."""

    def iter_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Like ``list`` but streaming, for stores too large to hold in memory (e.g. ``store gc``)."""
        yield from self.list(prefix)

    def put_file(self, key: str, path: str | Path) -> ObjectInfo:
        """Upload a local file (checkpoints are a few MB, so reading it whole is fine)."""
        return self.put(key, Path(path).read_bytes())

    def stat(self, key: str) -> ObjectInfo:
        """Size and sha256 of one object; NotFoundError if missing."""
        data = self.get(key)
        return ObjectInfo(key=key, sha256=sha256_hex(data), size=len(data))
