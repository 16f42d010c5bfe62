"""Migrations are the only way the schema is made: round trip, no drift, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from orgmem.db import Base
from orgmem.db.migrate import (
    MIGRATIONS_DIR,
    SchemaError,
    check,
    current_revision,
    downgrade,
    head_revision,
    require_current,
    upgrade,
)
from orgmem.db.session import dispose_engines

REPO = Path(__file__).resolve().parents[2]


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_round_trip_and_no_drift(empty_db_url: str) -> None:
    assert current_revision(empty_db_url) is None
    assert upgrade(empty_db_url) == head_revision()
    assert _tables(empty_db_url) == set(Base.metadata.tables)
    check(empty_db_url)
    assert downgrade(empty_db_url, "base") is None
    assert _tables(empty_db_url) == set()
    assert upgrade(empty_db_url) == head_revision()
    check(empty_db_url)
    require_current(empty_db_url)


def test_check_detects_drift(db_url: str) -> None:
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE orgs ADD COLUMN surprise INTEGER"))
    engine.dispose()
    with pytest.raises(SchemaError, match="differs from the models.*surprise"):
        check(db_url)


def test_require_current_names_the_fix(empty_db_url: str) -> None:
    with pytest.raises(SchemaError, match="no orgmem schema: run `orgmem init`"):
        require_current(empty_db_url)


def test_alembic_ini_works_from_another_cwd(empty_db_url: str, tmp_path: Path) -> None:
    """`alembic -c migrations/alembic.ini` (the plain Alembic CLI) uses the same environment."""
    env = {**os.environ, "ORGMEM_DATABASE_URL": empty_db_url}
    ini = str(MIGRATIONS_DIR / "alembic.ini")
    # one interpreter runs the Alembic CLI entry point three times (spawning three costs seconds)
    script = (
        "import sys; from alembic.config import main\n"
        "for args in (['upgrade', 'head'], ['check'], ['downgrade', 'base']):\n"
        "    main(argv=['-c', sys.argv[1], *args])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, ini], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "No new upgrade operations detected" in done.stdout
    dispose_engines()
    assert current_revision(empty_db_url) is None
    assert MIGRATIONS_DIR == REPO / "migrations"
