"""Fixtures for job / worker tests: a migrated SQLite database under the test's ORGMEM_HOME."""

from __future__ import annotations

import pytest

from orgmem.jobs.settings import get_job_settings
from tests.fixtures_home_db import migrated_home_db, org  # noqa: F401  (org: a fixture of this folder)


@pytest.fixture
def db():
    """The configured (per-test SQLite) database, migrated to head."""
    get_job_settings.cache_clear()
    yield from migrated_home_db()
    get_job_settings.cache_clear()
