"""Shared plumbing for every ``orgmem`` command module: settings, sessions, store, output.

Command modules stay small by using these helpers:

- ``db_session(write=...)``: a session on the configured database, refusing an unmigrated one;
- ``open_configured_store()``: the configured object store;
- ``emit(data, as_json, text)``: ``--json`` prints ``data`` as JSON, otherwise ``text``;
- ``JsonFlag``, ``ActorOption``, ``ReasonOption``: the common options, spelled the same everywhere.

A module ``orgmem/cli/<name>.py`` is mounted by ``main.py`` as ``orgmem <name>``: it exports
either ``app`` (a ``typer.Typer`` group) or ``command`` (a function, one command).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from sqlalchemy.orm import Session
from typer.core import TyperGroup

from orgmem.config import Settings, get_settings
from orgmem.store.base import ObjectStore

if TYPE_CHECKING:  # the Context TyperGroup's methods take: Typer's own copy of click's
    from typer._click.core import Context

OrgArg = Annotated[str, typer.Argument(help="Org slug.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ActorOption = Annotated[
    str | None, typer.Option("--actor", help="Who is acting (default: $ORGMEM_ACTOR or cli:<user>).")
]
ReasonOption = Annotated[str | None, typer.Option("--reason", help="Why; recorded in the history.")]

_checked_urls: set[str] = set()


def settings() -> Settings:
    return get_settings()


def actor_or_default(actor: str | None) -> str:
    from orgmem.lineage.audit import default_actor

    return actor or default_actor()


@contextmanager
def db_session(*, write: bool = False) -> Iterator[Session]:
    """A committed-on-success session on ``ORGMEM_DATABASE_URL``, after checking its schema."""
    from orgmem.db.migrate import require_current
    from orgmem.db.session import session_scope

    url = settings().database_url
    if url not in _checked_urls:
        require_current(url)
        _checked_urls.add(url)
    with session_scope(url, write=write) as session:
        yield session


def forget_schema_checks() -> None:
    """After a migration in this process, check the schema again on the next session."""
    _checked_urls.clear()


def open_configured_store() -> ObjectStore:
    from orgmem.store import open_store

    return open_store(settings=settings())


def to_jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def emit(data: Any, as_json: bool, text: str | Callable[[], str]) -> None:
    """One output path for every command: JSON on stdout, or the human rendering."""
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=False, default=to_jsonable))
    else:
        typer.echo(text() if callable(text) else text)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table (stable in tests and pipes, unlike terminal-width tables)."""
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
    return "\n".join(lines)


def emit_table(
    data: Any, as_json: bool, headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str
) -> None:
    """A listing command's output: ``data`` as JSON, else the table of ``rows`` or, with none, ``empty``."""
    emit(data, as_json, lambda: format_table(headers, rows) if rows else empty)


def short_time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if value else ""


def parse_time(text: str) -> datetime:
    """ISO 8601 (``2026-11-25``, ``2026-11-25T22:00``, ``...Z``, ``+01:00``) or ``now``; naive = UTC."""
    if text.strip().lower() == "now":
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 time such as 2026-11-25T22:00:00Z") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``0``, ``90`` / ``90s``, ``15m``, ``1h``, ``2d``."""
    match = _DURATION.match(text.lower())
    if not match:
        raise typer.BadParameter(f"{text!r} is not a duration such as 0, 90s, 15m, 1h or 2d")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


class ListByDefault(TyperGroup):
    """A noun's group (``orgmem jobs``) that lists when the first word is not one of its verbs, so
    the older one-command spelling ``orgmem jobs ORG`` means ``orgmem jobs list ORG``."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["list", *args]
        return super().parse_args(ctx, args)


def mount(app: typer.Typer, module: ModuleType, *, alias: str | None = None) -> None:
    """Add ``orgmem/cli/<name>.py`` to ``app`` as ``orgmem <name>`` (its ``app`` group or ``command``);
    ``alias``: also as ``orgmem <alias>``, hidden from help (an older spelling scripts may use)."""
    name = module.__name__.rsplit(".", 1)[-1]
    group = getattr(module, "app", None)
    if isinstance(group, typer.Typer):
        app.add_typer(group, name=name)
        if alias is not None:
            app.add_typer(group, name=alias, hidden=True)
        return
    command = getattr(module, "command", None)
    if not callable(command):
        raise RuntimeError(f"{module.__name__} must export `app` (typer.Typer) or `command` (a function)")
    app.command(name, context_settings=getattr(command, "context_settings", None))(command)
