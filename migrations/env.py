"""Alembic environment: migrations are the only way orgmem's schema is made.

SQLite gets batch mode (it cannot ALTER constraints) and runs with foreign keys off, as Alembic
recommends, because batch mode recreates tables that others reference.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy.pool import NullPool

from orgmem.db import Base
from orgmem.db.session import is_sqlite, make_engine

config = context.config
if config.config_file_name is not None and not config.attributes.get("database_url"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _database_url() -> str:
    url = config.attributes.get("database_url") or context.get_x_argument(as_dictionary=True).get("url")
    if url:
        return url
    from orgmem.config import get_settings

    return get_settings().database_url


def _configure(**kwargs: object) -> None:
    url = _database_url()
    context.configure(
        target_metadata=Base.metadata,
        render_as_batch=is_sqlite(url),
        compare_type=True,
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=_database_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_database_url(), sqlite_foreign_keys=False, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            _configure(connection=connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
