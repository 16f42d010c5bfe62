"""``orgmem sync ORG [--source NAME] --inline``: pull new material from an org's sources now.

Queued syncs (Celery ``ingest`` queue) arrive with issue #5; until then ``--inline`` is the way.
"""

from __future__ import annotations

from typing import Annotated

import typer

from orgmem.cli.common import JsonFlag, db_session, emit


def command(
    org: Annotated[str, typer.Argument(help="Org slug.")],
    source: Annotated[
        str | None, typer.Option("--source", help="Only this source (default: all enabled).")
    ] = None,
    inline: Annotated[
        bool, typer.Option("--inline", help="Run in this process instead of the worker queue.")
    ] = False,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr.")
    ] = True,
    as_json: JsonFlag = False,
) -> None:
    """Sync an org's sources: governance, chunking, pending chunks; exit 1 if a source failed."""
    if not inline:
        typer.echo(
            "queued syncs (the worker's `ingest` queue) arrive with issue #5; use --inline for now", err=True
        )
        raise typer.Exit(2)
    from orgmem.ingest.inline import run_inline_sync
    from orgmem.lineage import get_org

    with db_session(write=True) as session:
        job_id, reports = run_inline_sync(
            session, get_org(session, org), source_name=source, progress=progress
        )
    data = {"job": job_id, "sources": [r.to_dict() for r in reports]}
    lines = [r.summary() for r in reports] or [f"org {org!r} has no enabled sources"]
    emit(data, as_json, "\n".join([*lines, f"job {job_id}"]))
    if any(r.error for r in reports):
        raise typer.Exit(1)
