"""S3 object store (``s3://bucket/prefix``) for AWS or any S3-compatible server (Ceph RGW, moto).

Every object carries its sha256 in user metadata, every write is read back and verified, and every
botocore failure is turned into an orgmem error that names the endpoint, bucket and key, so an
operator sees *which* store is wrong instead of a stack of botocore internals. Timeouts and retry
counts are short and bounded: an unreachable server fails within seconds, not minutes.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from orgmem.errors import IntegrityError, NotFoundError, OrgmemError
from orgmem.store.base import (
    InvalidKeyError,
    ObjectInfo,
    ObjectNotFoundError,
    ObjectStore,
    StoreAccessError,
    StoreError,
    StoreUnavailableError,
    check_sha256,
    sha256_hex,
    validate_key,
    validate_prefix,
)

logger = logging.getLogger(__name__)

SHA256_META = "sha256"  # user metadata key (sent as x-amz-meta-sha256)
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_ACCESS = {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "403", "InvalidToken",
           "ExpiredToken", "AuthorizationHeaderMalformed"}
_UNREACHABLE = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)


@dataclass(frozen=True)
class S3Options:
    """How to reach the server. ``None`` credentials mean boto's standard chain (AWS_* env, files)."""

    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    connect_timeout: float = 2.0
    read_timeout: float = 5.0
    max_attempts: int = 3  # retries after the first try (botocore: 4 tries in all), adaptive back-off
    page_size: int = 1000  # keys per ListObjectsV2 request (small values exercise pagination)

    def client_config(self) -> Config:
        # Path-style: S3-compatible servers rarely have wildcard DNS for virtual-host buckets.
        # Checksums "when_required": newer boto sends aws-chunked CRC trailers that older
        # S3-compatible servers (Ceph 16) reject; we send Content-MD5 and verify sha256 ourselves.
        return Config(
            region_name=self.region,
            signature_version="s3v4",
            s3={"addressing_style": "path" if self.endpoint_url else "auto"},
            retries={"mode": "adaptive", "max_attempts": self.max_attempts},
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )


class S3Store(ObjectStore):
    """Objects under ``s3://bucket/prefix/``; the bucket must exist (see ``ensure_bucket``)."""

    def __init__(self, bucket: str, prefix: str = "", options: S3Options | None = None) -> None:
        if not _BUCKET_NAME.match(bucket or ""):
            raise InvalidKeyError(f"S3 bucket name {bucket!r} is not valid (3-63 chars: a-z 0-9 . -)")
        prefix = prefix.strip("/")
        if prefix:
            validate_key(prefix)
        self.bucket, self.prefix = bucket, prefix
        self.options = options or S3Options()
        self.url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        session = boto3.session.Session(
            aws_access_key_id=self.options.access_key_id,
            aws_secret_access_key=self.options.secret_access_key,
            region_name=self.options.region,
        )
        self.client = session.client(
            "s3", endpoint_url=self.options.endpoint_url, config=self.options.client_config()
        )
        self.endpoint = self.client.meta.endpoint_url

    def __repr__(self) -> str:
        return f"S3Store({self.url!r}, endpoint={self.endpoint!r})"

    def _full(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    # -- errors --------------------------------------------------------------------------------
    @contextmanager
    def _errors(self, action: str, key: str | None = None, what: str | None = None) -> Iterator[None]:
        """Translate botocore failures into orgmem errors naming endpoint, bucket and key."""
        what = what or (f"object {key!r} in {self.url}" if key is not None else self.url)
        try:
            yield
        except ClientError as exc:
            raise self._client_error(exc, action, key, what) from exc
        except _UNREACHABLE as exc:
            raise StoreUnavailableError(
                f"S3 endpoint {self.endpoint} unreachable while {action} {what}: {exc}"
            ) from exc
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise StoreAccessError(
                f"no usable S3 credentials for {self.endpoint} ({what}): set ORGMEM_S3_ACCESS_KEY_ID and "
                f"ORGMEM_S3_SECRET_ACCESS_KEY (or the AWS_* variables): {exc}"
            ) from exc
        except BotoCoreError as exc:
            raise StoreError(f"S3 error at {self.endpoint} while {action} {what}: {exc}") from exc

    def _client_error(self, exc: ClientError, action: str, key: str | None, what: str) -> OrgmemError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "?"))
        detail = f"{code}: {error.get('Message') or 'no message'}"
        if code == "NoSuchBucket" or (code in _NOT_FOUND and key is None):
            return ObjectNotFoundError(f"bucket {self.bucket!r} does not exist at {self.endpoint} ({detail})")
        if code in _NOT_FOUND:
            return ObjectNotFoundError(f"{what} not found (endpoint {self.endpoint})")
        if code in _ACCESS:
            return StoreAccessError(
                f"S3 endpoint {self.endpoint} refused {action} {what}: {detail}; check "
                f"ORGMEM_S3_ACCESS_KEY_ID / ORGMEM_S3_SECRET_ACCESS_KEY and the bucket's permissions"
            )
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        kind = StoreUnavailableError if status >= 500 else StoreError
        return kind(f"S3 endpoint {self.endpoint} failed {action} {what}: {detail} (HTTP {status})")

    # -- bucket --------------------------------------------------------------------------------
    def ensure_bucket(self) -> bool:
        """Create the bucket if missing (only when asked: production buckets are provisioned).

        Returns True if it was created.
        """
        try:
            with self._errors("checking bucket"):
                self.client.head_bucket(Bucket=self.bucket)
            return False
        except NotFoundError:
            pass
        extra: dict[str, Any] = {}
        if self.options.region != "us-east-1":
            extra["CreateBucketConfiguration"] = {"LocationConstraint": self.options.region}
        with self._errors("creating bucket"):
            try:
                self.client.create_bucket(Bucket=self.bucket, **extra)
            except ClientError as exc:  # created concurrently by another process: fine
                if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                    raise
                return False
        logger.info("created bucket", extra={"store": self.url, "endpoint": self.endpoint})
        return True

    # -- objects -------------------------------------------------------------------------------
    def put(self, key: str, data: bytes) -> ObjectInfo:
        full = self._full(key)
        info = ObjectInfo(key=key, sha256=sha256_hex(data), size=len(data))
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        with self._errors("writing", key):
            self.client.put_object(Bucket=self.bucket, Key=full, Body=data, ContentMD5=md5,
                                   Metadata={SHA256_META: info.sha256})
        back, meta = self._read_bytes(key)
        if len(back) != info.size or sha256_hex(back) != info.sha256 or meta.get(SHA256_META) != info.sha256:
            self.delete(key)
            raise IntegrityError(
                f"object {key!r} in {self.url} read back differently after writing (wrote {info.size} "
                f"bytes sha256 {info.sha256}, read {len(back)} bytes, metadata {meta}); removed it"
            )
        logger.debug("stored object", extra={"store": self.url, "key": key, "size": info.size})
        return info

    def _read_bytes(self, key: str) -> tuple[bytes, dict[str, str]]:
        """Body and user metadata of ``key``."""
        with self._errors("reading", key):
            response = self.client.get_object(Bucket=self.bucket, Key=self._full(key))
            return response["Body"].read(), response.get("Metadata", {})

    def get(self, key: str, expected_sha256: str | None = None) -> bytes:
        """Verify against ``expected_sha256`` (from the database) or else the sha256 stored with it."""
        data, meta = self._read_bytes(key)
        check_sha256(key, data, expected_sha256 or meta.get(SHA256_META), self.url)
        return data

    def stat(self, key: str) -> ObjectInfo:
        with self._errors("inspecting", key):
            head = self.client.head_object(Bucket=self.bucket, Key=self._full(key))
        return ObjectInfo(key=key, sha256=head.get("Metadata", {}).get(SHA256_META, ""),
                          size=head["ContentLength"])

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except NotFoundError:
            return False
        return True

    def delete(self, key: str) -> None:
        with self._errors("deleting", key):
            self.client.delete_object(Bucket=self.bucket, Key=self._full(key))

    def iter_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Keys under ``prefix`` in key order, ``page_size`` per request (sha256 is '': not listed)."""
        validate_prefix(prefix)
        root = f"{self.prefix}/" if self.prefix else ""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=root + prefix, PaginationConfig={"PageSize": self.options.page_size}
        )
        with self._errors("listing", what=f"prefix {prefix!r} in {self.url}"):
            for page in pages:
                for obj in page.get("Contents", []):
                    yield ObjectInfo(key=obj["Key"][len(root):], sha256="", size=obj["Size"])

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        return list(self.iter_objects(prefix))
