"""``orgmem sync ORG [--source NAME] [--inline | --wait]``: pull new material from an org's sources.

Without ``--inline`` the sync is a job on the worker's ``ingest`` queue (``orgmem worker``); its id is
printed, and ``--wait`` follows it to the end.
"""

from __future__ import annotations

from typing import Annotated

import typer

from orgmem.cli.common import ActorOption, JsonFlag, OrgArg, actor_or_default, db_session, emit


def command(
    org: OrgArg,
    source: Annotated[
        str | None, typer.Option("--source", help="Only this source (default: all enabled).")
    ] = None,
    inline: Annotated[
        bool, typer.Option("--inline", help="Run in this process instead of the worker queue.")
    ] = False,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr.")
    ] = True,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the queued job until it finishes.")] = False,
    actor: ActorOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Sync an org's sources: governance, chunking, pending chunks; exit 1 if a source failed."""
    if not inline:
        _queued(org, source, wait, actor, as_json)
        return
    from orgmem.ops.jobs import sync_inline

    with db_session():
        pass  # refuses an unmigrated database with the fix
    job_id, reports = sync_inline(org, source=source, progress=progress)
    data = {"job": job_id, "sources": [r.to_dict() for r in reports]}
    lines = [r.summary() for r in reports] or [f"org {org!r} has no enabled sources"]
    emit(data, as_json, "\n".join([*lines, f"job {job_id}"]))
    if any(r.error for r in reports):
        raise typer.Exit(1)


def _queued(org: str, source: str | None, wait: bool, actor: str | None, as_json: bool) -> None:
    from orgmem.lineage import get_org
    from orgmem.ops.jobs import submit_sync, wait_for

    with db_session() as session:
        get_org(session, org)  # an unknown org fails here, before anything is queued
    job_id = submit_sync(org, actor=actor_or_default(actor), source=source)
    if not wait:
        emit({"job": job_id, "status": "queued"}, as_json, job_id)
        return
    view = wait_for(job_id)
    emit(view, as_json, f"job {job_id}: {view['status']}")
    if view["status"] != "succeeded":
        raise typer.Exit(1)
