"""``orgmem governance``: which rules this installation applies, and which checkpoints predate them."""

from __future__ import annotations

from typing import Annotated

import typer

from orgmem.cli.common import JsonFlag, OrgArg, db_session, emit, emit_table, short_time

app = typer.Typer(help="Governance applied to checkpoints' training data.", no_args_is_help=True)


@app.command("rules")
def rules(as_json: JsonFlag = False) -> None:
    """The scanner, rule set and rule-set version new checkpoints record."""
    from orgmem.governance.record import current_ruleset, rule_names

    data = {**current_ruleset(), "rules": rule_names()}
    emit(data, as_json, lambda: "\n".join(f"{k}: {v}" for k, v in data.items() if k != "rules")
         + f"\nrules ({len(data['rules'])}): " + ", ".join(data["rules"]))  # fmt: skip


@app.command("affected")
def affected(
    org: OrgArg,
    ruleset_not: Annotated[
        str | None,
        typer.Option("--ruleset-not", help="Rule-set version to compare with (default: the current one)."),
    ] = None,
    include_quarantined: Annotated[
        bool, typer.Option("--include-quarantined", help="Also list quarantined checkpoints.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Checkpoints built under another rule set (or with none recorded): candidates to retrain."""
    from orgmem.governance.record import affected_checkpoints, checkpoint_ruleset, ruleset_version
    from orgmem.lineage import get_org

    current = ruleset_not or ruleset_version()
    with db_session() as session:
        org_row = get_org(session, org)
        found = affected_checkpoints(session, org_row, current, include_quarantined=include_quarantined)
        rows = [
            {"id": ck.id, "status": ck.status, "created_at": ck.created_at.isoformat(),
             "ruleset_version": checkpoint_ruleset(ck), "served": ck.id == org_row.served_checkpoint_id,
             "redactions": ((ck.metrics or {}).get("governance") or {}).get("redactions")}
            for ck in found
        ]  # fmt: skip
        times = [short_time(ck.created_at) for ck in found]
    table = [
        (r["id"], r["status"], at, r["ruleset_version"] or "(none recorded)", "yes" if r["served"] else "")
        for r, at in zip(rows, times, strict=True)
    ]
    data = {"org": org, "current_ruleset_version": current, "checkpoints": rows}
    empty = f"every checkpoint of org {org!r} was built under rule set {current}"
    emit_table(data, as_json, ["CHECKPOINT", "STATUS", "CREATED", "RULESET", "SERVED"], table, empty)
