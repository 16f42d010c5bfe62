"""Database fixtures shared by the db, lineage and CLI tests: every test runs on SQLite and PostgreSQL.

``db_url`` is a migrated database of its own per test, copied from a template migrated once per
session (a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL), so tests stay fast
while each one starts from exactly the schema the migrations make. ``empty_db_url`` is a fresh
database with no schema, for the migration tests. PostgreSQL comes from ``ORGMEM_TEST_DATABASE_URL``
(skipped with the reason locally, a failure under ``CI=true``).

Use from a test folder's conftest: ``from tests.fixtures_db import *  # noqa: F403``.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from orgmem.config import get_settings
from orgmem.db.session import dispose_engines, session_factory
from tests.conftest import service_env

__all__ = ["db_backend", "db_url", "empty_db_url", "session", "store"]


class SqliteBackend:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.template = self._new_path()

    def _new_path(self) -> Path:
        return self.folder / f"orgmem-{uuid.uuid4().hex[:10]}.db"

    def prepare_template(self) -> None:
        from orgmem.db.migrate import upgrade

        upgrade(f"sqlite:///{self.template}")

    def create(self, migrated: bool) -> str:
        path = self._new_path()
        if migrated:
            shutil.copyfile(self.template, path)
        return f"sqlite:///{path}"

    def drop(self, url: str) -> None:
        path = Path(make_url(url).database or "")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

    def close(self) -> None:
        self.drop(f"sqlite:///{self.template}")


class PostgresBackend:
    """Databases named ``orgmem_t_<hex>`` on the server of ``ORGMEM_TEST_DATABASE_URL``."""

    def __init__(self, server_url: str) -> None:
        self.server = make_url(server_url)
        admin = self.server.set(database="postgres")
        self.admin = create_engine(admin, isolation_level="AUTOCOMMIT", pool_size=1)
        self.template = self._create(None)

    def _url(self, name: str) -> str:
        return self.server.set(database=name).render_as_string(hide_password=False)

    def _create(self, template: str | None) -> str:
        name = f"orgmem_t_{uuid.uuid4().hex[:12]}"
        clause = f" TEMPLATE {template}" if template else ""
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        return name

    def prepare_template(self) -> None:
        from orgmem.db.migrate import upgrade

        upgrade(self._url(self.template))

    def create(self, migrated: bool) -> str:
        return self._url(self._create(self.template if migrated else None))

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        self.drop(self._url(self.template))
        self.admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def db_backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    if request.param == "sqlite":
        backend: SqliteBackend | PostgresBackend = SqliteBackend(tmp_path_factory.mktemp("sqlite-dbs"))
    else:
        backend = PostgresBackend(service_env("ORGMEM_TEST_DATABASE_URL"))
    backend.prepare_template()
    dispose_engines()
    yield backend
    dispose_engines()
    backend.close()


def _private_db(backend: SqliteBackend | PostgresBackend, monkeypatch: pytest.MonkeyPatch,
                *, migrated: bool) -> Iterator[str]:
    """A database of this test's own, configured as ORGMEM_DATABASE_URL, dropped after the test."""
    url = backend.create(migrated=migrated)
    monkeypatch.setenv("ORGMEM_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    dispose_engines()
    backend.drop(url)


@pytest.fixture
def empty_db_url(db_backend, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A database with no schema at all; also the configured ORGMEM_DATABASE_URL."""
    yield from _private_db(db_backend, monkeypatch, migrated=False)


@pytest.fixture
def db_url(db_backend, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A database migrated to head, private to this test; also the configured ORGMEM_DATABASE_URL."""
    yield from _private_db(db_backend, monkeypatch, migrated=True)


@pytest.fixture
def session(db_url: str) -> Iterator[Session]:
    sess = session_factory(db_url)()
    yield sess
    sess.rollback()
    sess.close()


@pytest.fixture
def store():
    """The configured store: a local folder under this test's ORGMEM_HOME."""
    from orgmem.store import open_store

    return open_store()
