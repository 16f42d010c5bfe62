"""``orgmem store gc``: remove checkpoint objects that no committed row references, and the objects
of forgotten checkpoints whose grace period has passed (or whose deletion failed before)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from orgmem.cli.common import JsonFlag, db_session, emit, open_configured_store, parse_duration

app = typer.Typer(help="Object store maintenance.", no_args_is_help=True)


@app.command("gc")
def gc(
    grace: Annotated[
        str,
        typer.Option(
            "--grace", help="Keep orphans younger than this (0, 90s, 15m, 1h, 2d): commits in flight."
        ),
    ] = "1h",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be removed; remove nothing.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Remove orphan checkpoint objects left by failed or killed commits, and forgotten ones when due."""
    from orgmem.checkpoints import collect_garbage
    from orgmem.pipeline.purge import purge_due

    grace_period = parse_duration(grace)
    store = open_configured_store()
    with db_session() as session:
        report = collect_garbage(session, store, grace=grace_period, dry_run=dry_run)
        purged = [] if dry_run else purge_due(session, store)
    verb = "would remove" if dry_run else "removed"
    receipts: list[dict[str, Any]] = [
        {"id": r.id, "status": r.deletion_status, "objects": len(r.objects_deleted or []),
         "bytes": r.bytes_deleted, "error": r.deletion_error}
        for r in purged
    ]
    data = {
        **report.as_dict(),
        "forget_receipts": receipts,
    }

    def text() -> str:
        lines = [f"{verb} {len(report.removed)} orphan object(s), {report.bytes_removed} bytes"]
        lines += [f"  {key}" for key in report.removed]
        if report.kept_recent:
            lines.append(
                f"kept {len(report.kept_recent)} orphan object(s) younger than {grace} (commit in flight?)"
            )
        for r in receipts:
            lines.append(f"forget receipt {r['id']}: deletion {r['status']}, {r['objects']} object(s), "
                         f"{r['bytes']} bytes" + (f" ({r['error']})" if r["error"] else ""))
        return "\n".join(lines)

    emit(data, as_json, text)
