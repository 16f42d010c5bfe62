"""Local-folder object store: the embedded default (``file://<home>/store``).

A key is a relative path under the root. Writes are atomic (temp file in the same folder, fsync,
``os.replace``) so a crash leaves either the old object or the new one, never half a file, and
every write is read back and checksummed before ``put`` returns.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from orgmem.errors import ConflictError, IntegrityError
from orgmem.store.base import (
    InvalidKeyError,
    ObjectInfo,
    ObjectNotFoundError,
    ObjectStore,
    check_sha256,
    sha256_hex,
    validate_key,
    validate_prefix,
)

logger = logging.getLogger(__name__)

_TMP_PREFIX = ".tmp-"  # in-flight writes; never listed, never a valid object


class LocalFolderStore(ObjectStore):
    """Objects as files under ``root``; the root is created on the first write."""

    def __init__(self, root: str | Path) -> None:
        root = Path(root)
        if not root.is_absolute():
            raise InvalidKeyError(f"local store root {str(root)!r} must be an absolute path")
        self.root = root
        self.url = root.as_uri()

    def __repr__(self) -> str:
        return f"LocalFolderStore({str(self.root)!r})"

    # -- paths ---------------------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        """File for ``key``; refuses keys (or symlinks) that would land outside the root."""
        path = self.root / validate_key(key)
        if path.name.startswith(_TMP_PREFIX):
            raise InvalidKeyError(f"object key {key!r}: names starting with {_TMP_PREFIX!r} are reserved")
        real_root = self.root.resolve()
        if not path.resolve().is_relative_to(real_root):
            raise InvalidKeyError(f"object key {key!r} resolves outside the store root {self.root}")
        return path

    # -- writing -------------------------------------------------------------------------------
    def put(self, key: str, data: bytes) -> ObjectInfo:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._write_atomic(path, data)
        except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
            raise ConflictError(
                f"object key {key!r} in {self.url} clashes with an existing object or folder: {exc}"
            ) from None
        info = ObjectInfo(key=key, sha256=sha256_hex(data), size=len(data))
        back = self._read_bytes(key, path)
        if len(back) != info.size or sha256_hex(back) != info.sha256:
            path.unlink(missing_ok=True)
            raise IntegrityError(
                f"object {key!r} in {self.url} read back differently after writing "
                f"(wrote {info.size} bytes sha256 {info.sha256}, read {len(back)} bytes); removed it"
            )
        logger.debug("stored object", extra={"store": self.url, "key": key, "size": info.size})
        return info

    @staticmethod
    def _write_atomic(path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)

    # -- reading -------------------------------------------------------------------------------
    def _read_bytes(self, key: str, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFoundError(f"object {key!r} not found in {self.url}") from None

    def get(self, key: str, expected_sha256: str | None = None) -> bytes:
        data = self._read_bytes(key, self._path(key))
        check_sha256(key, data, expected_sha256, self.url)
        return data

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    # -- deleting and listing ------------------------------------------------------------------
    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        self._prune_empty_dirs(path.parent)

    def _prune_empty_dirs(self, folder: Path) -> None:
        """Remove folders left empty by a delete, so gc leaves no skeleton of old checkpoints."""
        while folder != self.root and folder.is_relative_to(self.root):
            try:
                folder.rmdir()
            except OSError:  # not empty (or already gone): stop climbing
                return
            folder = folder.parent

    def iter_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Keys starting with ``prefix`` (a plain string prefix, as on S3), in sorted order.

        sha256 is '' here: hashing every file to list them would make gc read the whole store.
        """
        validate_prefix(prefix)
        top = self.root / prefix.rpartition("/")[0] if "/" in prefix else self.root
        if not top.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for name in sorted(filenames):
                if name.startswith(_TMP_PREFIX):
                    continue
                path = Path(dirpath) / name
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield ObjectInfo(key=key, sha256="", size=path.stat().st_size)

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        return sorted(self.iter_objects(prefix), key=lambda info: info.key)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX needs the directory entry flushed too)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
