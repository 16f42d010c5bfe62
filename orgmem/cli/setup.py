"""``orgmem init`` and ``orgmem config``: make an installation usable, and show how it is configured."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import typer

from orgmem.cli.common import JsonFlag, emit, forget_schema_checks, open_configured_store, settings


def init(as_json: JsonFlag = False) -> None:
    """Create ORGMEM_HOME, migrate the database to the latest schema, create the local store."""
    from orgmem.db.migrate import upgrade

    cfg = settings()
    cfg.home.mkdir(parents=True, exist_ok=True)
    revision = upgrade(cfg.database_url)
    forget_schema_checks()
    parts = urlsplit(cfg.store_url)
    if parts.scheme == "file":
        from pathlib import Path

        Path(unquote(parts.path)).mkdir(parents=True, exist_ok=True)
    open_configured_store()  # fails here, not later, on a malformed store URL
    masked = cfg.masked()
    result = {
        "home": str(cfg.home),
        "database_url": masked["database_url"],
        "revision": revision,
        "store_url": masked["store_url"],
    }
    emit(
        result,
        as_json,
        lambda: "\n".join(
            [
                f"home      {result['home']}",
                f"database  {result['database_url']} (schema {revision})",
                f"store     {result['store_url']}",
                "ready: create an org with `orgmem org create SLUG`",
            ]
        ),
    )


def config(as_json: JsonFlag = False) -> None:
    """Print the effective settings (ORGMEM_* variables and defaults), secrets masked."""
    masked = settings().masked()
    width = max(len(k) for k in masked)
    emit(masked, as_json, lambda: "\n".join(f"{k.ljust(width)}  {v}" for k, v in masked.items()))


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("config")(config)
