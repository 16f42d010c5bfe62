"""Fixtures shared by the store tests: a real-S3 bucket per test module."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from orgmem.store.s3 import S3Options, S3Store
from tests.conftest import service_env


@pytest.fixture(scope="module")
def s3_bucket() -> Iterator[tuple[S3Options, str]]:
    """A fresh bucket on the real server for this module (page size 2 to exercise pagination)."""
    options = S3Options(
        endpoint_url=service_env("ORGMEM_TEST_S3_ENDPOINT_URL"),
        access_key_id=service_env("ORGMEM_TEST_S3_ACCESS_KEY_ID"),
        secret_access_key=service_env("ORGMEM_TEST_S3_SECRET_ACCESS_KEY"),
        page_size=2,
    )
    bucket = f"orgmem-test-{uuid.uuid4().hex[:12]}"
    admin = S3Store(bucket, options=options)
    assert admin.ensure_bucket() is True
    assert admin.ensure_bucket() is False  # idempotent
    yield options, bucket
    for info in admin.list():
        admin.delete(info.key)
    admin.client.delete_bucket(Bucket=bucket)
