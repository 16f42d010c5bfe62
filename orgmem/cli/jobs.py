"""``orgmem jobs list ORG`` and ``orgmem jobs show|cancel|retry|wait ID``: background jobs.

``orgmem jobs ORG`` (no verb) still lists, and ``orgmem job ...`` is a hidden alias of this
group (``main``), so scripts written for the older spellings keep working.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from orgmem.cli.common import (
    ActorOption,
    JsonFlag,
    ListByDefault,
    OrgArg,
    actor_or_default,
    db_session,
    emit,
    emit_table,
    short_time,
)

app = typer.Typer(cls=ListByDefault, help="List an org's jobs; show, cancel, retry or wait for one.",
                  no_args_is_help=True)
JobArg = Annotated[str, typer.Argument(help="Job id (jb_...).")]


def _view(job_id: str, events: bool = True) -> dict[str, Any]:
    from orgmem.jobs import get_job, job_dict

    with db_session() as session:
        return job_dict(session, get_job(session, job_id), events=events)


def show_text(view: dict[str, Any]) -> str:
    lines = [
        f"job {view['id']}  {view['kind']} of org {view['org']}",
        f"status    {view['status']} ({view['progress']:.0%}), attempt(s) {view['attempts']}",
        f"created   {view['created_at']}",
        f"started   {view['started_at'] or '-'}",
        f"finished  {view['finished_at'] or '-'}",
    ]
    if view["lease_owner"]:
        where = f"pid {view['lease_pid']} on {view['lease_host']}, " if view.get("lease_host") else ""
        lines.append(f"worker    {view['lease_owner']} ({where}lease until {view['lease_expires_at']})")
    if view["error"]:
        lines.append(f"error     {view['error']}")
    if view["result"]:
        from orgmem.cli.consolidate import result_text

        lines.append(f"result    {result_text(view) if view['kind'] == 'consolidate' else view['result']}")
    lines.append("events:")
    lines += [f"  {e['at'][:19]} {e['level']:<7} {e['message']}" for e in view.get("events", [])]
    return "\n".join(lines)


@app.command("list")
def list_(
    org: OrgArg,
    status: Annotated[
        str | None, typer.Option("--status", help="queued|running|succeeded|failed|cancelled")
    ] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="sync|consolidate")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many jobs.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """List ORG's jobs with status, progress and attempts (also `orgmem jobs ORG`)."""
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
    emit_table(views, as_json, headers, rows, f"org {org!r} has no jobs")


@app.command("show")
def show(job_id: JobArg, as_json: JsonFlag = False) -> None:
    """Status, progress, result, errors and the event log of a job."""
    view = _view(job_id)
    emit(view, as_json, lambda: show_text(view))


@app.command("cancel")
def cancel(job_id: JobArg, actor: ActorOption = None, as_json: JsonFlag = False) -> None:
    """Cancel a queued job, or stop a running one before it commits anything; frees its org."""
    from orgmem.ops.jobs import cancel

    with db_session(write=True) as session:
        done = cancel(session, job_id, actor=actor_or_default(actor))
    released = (
        f"; its lease ({done.released}) is released, so the org can be consolidated again; a worker still "
        "running it stops before committing"
        if done.released
        else ""
    )
    emit(done.job, as_json, f"job {job_id} cancelled{released}")


@app.command("retry")
def retry(job_id: JobArg, actor: ActorOption = None, as_json: JsonFlag = False) -> None:
    """Run a failed or cancelled job again (same job id); re-send a queued one whose message was lost."""
    from orgmem.ops.jobs import retry as retry_job

    with db_session():
        pass  # refuses an unmigrated database with the fix
    view = retry_job(job_id, actor=actor_or_default(actor))
    emit(view, as_json, f"job {job_id} queued again")


@app.command("wait")
def wait(
    job_id: JobArg,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Give up after N seconds.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Follow a job until it finishes; exit 1 unless it succeeded."""
    from orgmem.cli.consolidate import follow, result_text

    view = follow(job_id, timeout, quiet=as_json)
    emit(view, as_json, lambda: result_text(view))
    if view["status"] != "succeeded":
        raise typer.Exit(1)
