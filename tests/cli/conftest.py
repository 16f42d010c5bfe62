"""Every test here runs on SQLite and on PostgreSQL (see tests/fixtures_db.py)."""

from tests.fixtures_db import *  # noqa: F403
