"""Smoke check of the real services started by ``infra/ci/services.sh`` (not a pytest module).

Run after ``start_services``: one real round trip per service, so a broken service setup is
reported as such before the suite starts failing in confusing ways. Exit code 0 means all good.
"""

from __future__ import annotations

import os
import sys
import time
import uuid

import boto3
import psycopg
import redis
from botocore.config import Config
from botocore.exceptions import ClientError


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        sys.exit(f"{name} is not set: run `. infra/ci/services.sh; start_services` first")
    return value


def check_postgres() -> str:
    url = _env("ORGMEM_TEST_PG_ADMIN_URL").replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, connect_timeout=5) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
    if not superuser:
        raise RuntimeError(f"{url}: current user is not a superuser, tests cannot CREATE DATABASE")
    return f"PostgreSQL {version}"


def check_redis() -> str:
    client = redis.Redis.from_url(_env("ORGMEM_TEST_REDIS_URL"), socket_timeout=5)
    client.set("orgmem:services-check", b"ok", ex=10)
    assert client.get("orgmem:services-check") == b"ok"
    return f"Redis {client.info()['redis_version']}"


def _s3(secret: str):
    return boto3.client(
        "s3", endpoint_url=_env("ORGMEM_TEST_S3_ENDPOINT_URL"), region_name="us-east-1",
        aws_access_key_id=_env("ORGMEM_TEST_S3_ACCESS_KEY_ID"), aws_secret_access_key=secret,
        config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
                      response_checksum_validation="when_required", retries={"max_attempts": 1}),
    )


def check_s3() -> str:
    s3 = _s3(_env("ORGMEM_TEST_S3_SECRET_ACCESS_KEY"))
    bucket = f"services-check-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    try:
        s3.put_object(Bucket=bucket, Key="a/b.txt", Body=b"hello")
        assert s3.get_object(Bucket=bucket, Key="a/b.txt")["Body"].read() == b"hello"
        wrong = _check_wrong_secret(bucket)
    finally:
        s3.delete_object(Bucket=bucket, Key="a/b.txt")
        s3.delete_bucket(Bucket=bucket)
    return f"S3 ({os.environ.get('ORGMEM_TEST_S3_IMPL', '?')}) put/get ok; wrong secret: {wrong}"


def _check_wrong_secret(bucket: str) -> str:
    try:
        _s3("not-the-secret").get_object(Bucket=bucket, Key="a/b.txt")
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code != "SignatureDoesNotMatch":
            raise RuntimeError(f"wrong secret gave {code}, expected SignatureDoesNotMatch") from exc
        return code
    if os.environ.get("ORGMEM_TEST_S3_IMPL") == "moto":
        return "accepted (moto does not check signatures)"
    raise RuntimeError("the S3 server accepted a wrong secret")


def main() -> int:
    failed = False
    for check in (check_postgres, check_redis, check_s3):
        start = time.perf_counter()
        try:
            print(f"ok   {check.__name__}: {check()} ({time.perf_counter() - start:.2f} s)")
        except Exception as exc:  # report every service, not just the first broken one
            failed = True
            print(f"FAIL {check.__name__}: {type(exc).__name__}: {exc}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
