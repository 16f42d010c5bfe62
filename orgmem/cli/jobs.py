"""``orgmem jobs ORG``: an org's background jobs, newest first."""

from __future__ import annotations

from typing import Annotated

import typer

from orgmem.cli.common import JsonFlag, db_session, emit, format_table, short_time


def command(
    org: Annotated[str, typer.Argument(help="Org slug.")],
    status: Annotated[
        str | None, typer.Option("--status", help="queued|running|succeeded|failed|cancelled")
    ] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="sync|consolidate")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many jobs.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """List ORG's jobs with status, progress and attempts."""
    from orgmem.db.enums import JobKind, JobStatus
    from orgmem.errors import OrgmemError
    from orgmem.jobs import job_dict, list_jobs
    from orgmem.lineage import get_org

    for value, enum, name in ((status, JobStatus, "--status"), (kind, JobKind, "--kind")):
        if value is not None and value not in {e.value for e in enum}:
            raise OrgmemError(f"{name} {value!r} is not one of {', '.join(e.value for e in enum)}")
    with db_session() as session:
        jobs = list_jobs(session, get_org(session, org), kind=kind, status=status, limit=limit)
        views = [job_dict(session, j) for j in jobs]
        rows = [
            (
                j.id,
                j.kind,
                j.status,
                f"{j.progress:.0%}",
                j.attempts,
                short_time(j.created_at),
                short_time(j.finished_at),
                (j.error or "")[:60],
            )
            for j in jobs
        ]
    headers = ("job", "kind", "status", "progress", "attempts", "created", "finished", "error")
    emit(views, as_json, lambda: format_table(headers, rows) if rows else f"org {org!r} has no jobs")
