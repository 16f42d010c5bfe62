"""``orgmem receipts ORG``: every forget of an org, newest first, with its deletion status."""

from __future__ import annotations

from typing import Annotated

import typer

from orgmem.cli.common import JsonFlag, db_session, emit, format_table, short_time


def command(
    org: Annotated[str, typer.Argument(help="Org slug.")],
    as_json: JsonFlag = False,
) -> None:
    """List the org's forget receipts (`orgmem receipt show ID` prints one)."""
    from orgmem.lineage import get_org
    from orgmem.lineage.receipts import list_receipts, receipt_dict

    with db_session() as session:
        org_row = get_org(session, org)
        receipts = list_receipts(session, org_row)
        rows = [receipt_dict(r, org_row.slug) for r in receipts]
        times = [short_time(r.created_at) for r in receipts]
    table = [
        (r["id"], at, r["document"], r["actor"], len(r["quarantined"]), r["head_after"] or "-",
         r["deletion"]["status"], r["deletion"]["bytes"])
        for r, at in zip(rows, times, strict=True)
    ]  # fmt: skip
    headers = ["RECEIPT", "AT", "DOCUMENT", "ACTOR", "QUARANTINED", "HEAD AFTER", "DELETION", "BYTES"]
    empty = f"org {org!r} has no forget receipts"
    emit(rows, as_json, lambda: format_table(headers, table) if table else empty)
