"""Engines and sessions from a database URL.

SQLite is the embedded default and is shared by several processes (CLI, API, workers), so every
connection turns foreign keys on, uses WAL (readers never block the writer) and waits on a busy
database instead of failing. pysqlite's own transaction handling is replaced by explicit BEGINs
(the SQLAlchemy-documented recipe) so that a session that writes can take the write lock up front
(``BEGIN IMMEDIATE``) instead of failing when a read transaction has to be upgraded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from orgmem.errors import NotFoundError

SQLITE_BUSY_TIMEOUT_MS = 30_000
_BEGIN_OPTION = "orgmem_sqlite_begin"

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _install_sqlite_hooks(engine: Engine, foreign_keys: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, see below
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str, *, sqlite_foreign_keys: bool = True, **kwargs: Any) -> Engine:
    """A new engine for ``url`` (prefer ``get_engine`` for a per-process shared one)."""
    if is_sqlite(url):
        kwargs.setdefault("connect_args", {}).setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        engine = create_engine(url, **kwargs)
        _install_sqlite_hooks(engine, sqlite_foreign_keys)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for ``url`` (default: the configured database)."""
    if url is None:
        from orgmem.config import get_settings

        url = get_settings().database_url
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = make_engine(url)
        return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests, forked workers, before dropping a database)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def session_factory(url: str | None = None, *, write: bool = False) -> sessionmaker[Session]:
    """Sessions bound to ``url``. ``write=True`` takes SQLite's write lock at the first statement."""
    engine = get_engine(url)
    bind = engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"}) if write else engine
    return sessionmaker(bind=bind, expire_on_commit=False)


def begin_write(session: Session) -> None:
    """Start the session's transaction as a writer (SQLite: ``BEGIN IMMEDIATE``).

    Read-then-write code calls this first: on SQLite a deferred transaction that read and then
    writes fails with "database is locked" when another process committed in between, whereas an
    immediate one waits for the lock. No effect if a transaction is already open, or on PostgreSQL
    (which locks rows with ``SELECT ... FOR UPDATE`` instead).
    """
    if not session.in_transaction():
        session.connection(execution_options={_BEGIN_OPTION: "IMMEDIATE"})


@contextmanager
def session_scope(url: str | None = None, *, write: bool = False) -> Iterator[Session]:
    """A session that commits when the block ends and rolls back if it raises."""
    session = session_factory(url, write=write)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


RowT = TypeVar("RowT")


def get_row(session: Session, model: type[RowT], key: Any) -> RowT:
    """``session.get`` for a row the caller's own data references (a foreign key, an id it just read):
    its absence is a broken reference, reported by table and key rather than as an AttributeError."""
    row = session.get(model, key)
    if row is None:
        table = getattr(model, "__tablename__", model.__name__)
        raise NotFoundError(f"{table} row {key!r} not found")
    return row
