"""Object stores chosen by URL scheme (as mlflow picks its stores): ``file://`` and ``s3://``.

``open_store()`` with no argument opens ``ORGMEM_STORE_URL`` (default ``file://<home>/store``).
A new backend joins by ``register_backend(scheme, factory)``, not by editing an if/else chain.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import SplitResult, unquote, urlsplit

from pydantic import SecretStr

from orgmem.config import Settings, get_settings
from orgmem.errors import OrgmemError
from orgmem.store.base import (
    InvalidKeyError,
    ObjectInfo,
    ObjectNotFoundError,
    ObjectStore,
    StoreAccessError,
    StoreError,
    StoreUnavailableError,
    sha256_hex,
)

StoreFactory = Callable[[SplitResult, Settings], ObjectStore]
_BACKENDS: dict[str, StoreFactory] = {}

__all__ = [
    "InvalidKeyError",
    "ObjectInfo",
    "ObjectNotFoundError",
    "ObjectStore",
    "StoreAccessError",
    "StoreError",
    "StoreUnavailableError",
    "open_store",
    "register_backend",
    "registered_schemes",
    "sha256_hex",
]


def register_backend(scheme: str, factory: StoreFactory) -> None:
    """Make ``scheme://...`` URLs open with ``factory``; a scheme can be registered only once."""
    if scheme in _BACKENDS:
        raise ValueError(f"object store scheme {scheme!r} is already registered")
    _BACKENDS[scheme] = factory


def registered_schemes() -> list[str]:
    return sorted(_BACKENDS)


def open_store(url: str | None = None, settings: Settings | None = None) -> ObjectStore:
    """The store at ``url`` (default: the configured ``store_url``)."""
    settings = settings or get_settings()
    url = url or settings.store_url
    parts = urlsplit(url)
    factory = _BACKENDS.get(parts.scheme)
    if factory is None:
        known = ", ".join(f"{s}://" for s in registered_schemes())
        raise OrgmemError(f"unknown object store URL scheme {parts.scheme!r} in {url!r} (known: {known})")
    if parts.query or parts.fragment:
        raise OrgmemError(f"object store URL {url!r} must not have a query or fragment")
    return factory(parts, settings)


def _open_file(parts: SplitResult, settings: Settings) -> ObjectStore:
    from orgmem.store.file import LocalFolderStore

    path = unquote(parts.path)
    if parts.netloc not in ("", "localhost") or not path.startswith("/"):
        raise OrgmemError(f"local store URL {parts.geturl()!r} must be file:///absolute/path")
    return LocalFolderStore(path)


def _open_s3(parts: SplitResult, settings: Settings) -> ObjectStore:
    from orgmem.store.s3 import S3Options, S3Store  # boto3 is imported only when S3 is used

    if not parts.netloc:
        raise OrgmemError(f"S3 store URL {parts.geturl()!r} has no bucket: use s3://bucket/prefix")

    def secret(value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value is not None else None

    options = S3Options(
        endpoint_url=settings.s3_endpoint_url or None,
        region=settings.s3_region,
        access_key_id=secret(settings.s3_access_key_id),
        secret_access_key=secret(settings.s3_secret_access_key),
    )
    return S3Store(parts.netloc, unquote(parts.path), options)


register_backend("file", _open_file)
register_backend("s3", _open_s3)
