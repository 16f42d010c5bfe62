"""Fixtures for job / worker tests: a migrated SQLite database under the test's ORGMEM_HOME."""

from __future__ import annotations

import pytest

from orgmem.config import get_settings
from orgmem.db import dispose_engines, session_scope
from orgmem.db.migrate import upgrade
from orgmem.jobs.settings import get_job_settings
from orgmem.lineage import create_org


@pytest.fixture
def db():
    """The configured (per-test SQLite) database, migrated to head."""
    get_job_settings.cache_clear()
    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    yield settings.database_url
    dispose_engines()
    get_job_settings.cache_clear()


@pytest.fixture
def org(db):
    with session_scope(write=True) as session:
        create_org(session, "acme", "Acme Corp", actor="test")
    return "acme"
