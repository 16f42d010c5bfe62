"""``orgmem db upgrade|downgrade|check|current``: the schema, through the Alembic migrations only."""

from __future__ import annotations

from typing import Annotated

import typer

from orgmem.cli.common import JsonFlag, emit, forget_schema_checks, settings

app = typer.Typer(help="Database schema migrations (Alembic).", no_args_is_help=True)


def _url() -> str:
    return settings().database_url


@app.command("upgrade")
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head", as_json: JsonFlag = False
) -> None:
    """Migrate the database up to REVISION (default: the latest)."""
    from orgmem.db.migrate import upgrade as run

    current = run(_url(), revision)
    forget_schema_checks()
    emit({"revision": current}, as_json, f"database at revision {current}")


@app.command("downgrade")
def downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, e.g. 'base' (drops everything) or '-1'.")],
    as_json: JsonFlag = False,
) -> None:
    """Migrate the database down to REVISION."""
    from orgmem.db.migrate import downgrade as run

    current = run(_url(), revision)
    forget_schema_checks()
    emit({"revision": current}, as_json, f"database at revision {current or 'base (empty)'}")


@app.command("check")
def check(as_json: JsonFlag = False) -> None:
    """Fail if the migrated schema differs from the models (``alembic check``)."""
    from orgmem.db.migrate import check as run
    from orgmem.db.migrate import current_revision, head_revision

    url = _url()
    run(url)
    data = {"revision": current_revision(url), "head": head_revision(), "drift": False}
    emit(data, as_json, f"schema at {data['revision']} matches the models")


@app.command("current")
def current(as_json: JsonFlag = False) -> None:
    """Print the database's revision and the latest one."""
    from orgmem.db.migrate import current_revision, head_revision

    data = {"revision": current_revision(_url()), "head": head_revision()}
    emit(data, as_json, f"database at {data['revision'] or 'base (empty)'}, latest is {data['head']}")
