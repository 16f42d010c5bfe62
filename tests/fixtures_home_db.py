"""The embedded database the pipeline and worker tests share: SQLite under the test's ORGMEM_HOME,
migrated to head, and the ``acme`` org on it.

Unlike ``tests/fixtures_db.py`` (a private copy of a template, on SQLite and PostgreSQL) this is the
database the configured settings name, so code that opens its own sessions and subprocesses (the
pipeline, workers, the CLI) finds it without being told.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orgmem.config import get_settings
from orgmem.db import dispose_engines, session_scope
from orgmem.db.migrate import upgrade
from orgmem.jobs import JobSettings
from orgmem.lineage import create_org


def migrated_home_db() -> Iterator[str]:
    """Migrate the configured database to head, yield its URL, then dispose of the engines."""
    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    yield settings.database_url
    dispose_engines()


@pytest.fixture
def org(db):
    """The ``acme`` org (Acme Corp) on the test's ``db``."""
    with session_scope(write=True) as session:
        create_org(session, "acme", "Acme Corp", actor="test")
    return "acme"


def retrying_job_settings(lease_seconds: float, heartbeat_seconds: float) -> JobSettings:
    """Job settings for tests that fail an attempt: one retry a second later, short lease waits."""
    return JobSettings(
        lease_seconds=lease_seconds,
        heartbeat_seconds=heartbeat_seconds,
        retry_backoff_seconds=1.0,
        max_attempts=2,
        lease_wait_seconds=0.5,
    )
