"""The object-store interface: immutable blobs addressed by key, with sha256 checksums.

Backends (local folder, S3) are chosen by URL scheme in ``orgmem.store.open_store``.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class ObjectInfo:
    """What the database records about one stored object."""

    key: str
    sha256: str
    size: int


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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
