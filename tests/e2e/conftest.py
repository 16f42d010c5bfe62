"""Real services for the end-to-end tests: a fresh PostgreSQL database, an S3 bucket on the real
server, a Redis database as broker. Endpoints come from ``infra/ci/services.sh`` (``ORGMEM_TEST_*``);
without them the tests skip with the reason, and fail under ``CI=true``."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from orgmem.config import get_settings
from orgmem.db import dispose_engines
from orgmem.jobs.settings import get_job_settings
from tests.conftest import service_env
from tests.pipeline.conftest import FAST_ENGINE, FAST_PIPELINE
from tests.workers.procs import run_cli

REDIS_DB = 11  # not the default 0, so e2e queues never meet another suite's


def _database(admin_url: str) -> Iterator[str]:
    name = f"orgmem_e2e_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _bucket(endpoint: str, key_id: str, secret: str) -> Iterator[str]:
    from orgmem.store.s3 import S3Options, S3Store

    bucket = f"orgmem-e2e-{uuid.uuid4().hex[:10]}"
    store = S3Store(
        bucket, options=S3Options(endpoint_url=endpoint, access_key_id=key_id, secret_access_key=secret)
    )
    store.ensure_bucket()
    try:
        yield bucket
    finally:
        for info in store.list():
            store.delete(info.key)
        store.client.delete_bucket(Bucket=bucket)


@pytest.fixture
def real_services(monkeypatch) -> Iterator[dict[str, str]]:
    """Environment (also applied to this process) pointing orgmem at the real services."""
    admin_url = service_env("ORGMEM_TEST_PG_ADMIN_URL")
    redis_url = service_env("ORGMEM_TEST_REDIS_URL")
    endpoint = service_env("ORGMEM_TEST_S3_ENDPOINT_URL")
    key_id, secret = (
        service_env("ORGMEM_TEST_S3_ACCESS_KEY_ID"),
        service_env("ORGMEM_TEST_S3_SECRET_ACCESS_KEY"),
    )
    broker = redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    databases, buckets = _database(admin_url), _bucket(endpoint, key_id, secret)
    db_url, bucket = next(databases), next(buckets)
    env = {
        "ORGMEM_DATABASE_URL": db_url,
        "ORGMEM_STORE_URL": f"s3://{bucket}/e2e",
        "ORGMEM_S3_ENDPOINT_URL": endpoint,
        "ORGMEM_S3_ACCESS_KEY_ID": key_id,
        "ORGMEM_S3_SECRET_ACCESS_KEY": secret,
        "ORGMEM_BROKER_URL": broker,
        "ORGMEM_BASE_MODEL": "tiny-random",
        "ORGMEM_PIPELINE_ENGINE": json.dumps(FAST_ENGINE),
        "ORGMEM_PIPELINE_OPTIONS": json.dumps(FAST_PIPELINE),
        "ORGMEM_LEASE_SECONDS": "3",
        "ORGMEM_HEARTBEAT_SECONDS": "0.5",
        "ORGMEM_RECOVER_INTERVAL_SECONDS": "1",
        "ORGMEM_RETRY_BACKOFF_SECONDS": "1",
        "OMP_NUM_THREADS": "1",
        # the test's feed server listens on 127.0.0.1, an internal address: allowed explicitly
        "ORGMEM_ALLOWED_NETWORKS": "127.0.0.0/8",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    get_job_settings.cache_clear()
    run_cli("init")
    try:
        yield dict(os.environ)
    finally:
        import redis

        redis.Redis.from_url(broker).flushdb()
        for gen in (databases, buckets):
            for _ in gen:  # runs the cleanup after the yield
                pass
