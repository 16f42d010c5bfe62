"""``orgmem receipts list ORG`` and ``orgmem receipts show ID``: what each forget did.

``orgmem receipts ORG`` (no verb) still lists, and ``orgmem receipt show ID`` is a hidden alias
(``main``), so scripts written for the older spellings keep working.
"""

from __future__ import annotations

from typing import Annotated

import typer

from orgmem.cli.common import JsonFlag, ListByDefault, OrgArg, db_session, emit, emit_table, short_time

app = typer.Typer(cls=ListByDefault, help="Forget receipts: list an org's, show one.", no_args_is_help=True)


@app.command("list")
def list_(org: OrgArg, as_json: JsonFlag = False) -> None:
    """List the org's forget receipts (`orgmem receipts show ID` prints one)."""
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
    emit_table(rows, as_json, headers, table, f"org {org!r} has no forget receipts")


@app.command("show")
def show(
    receipt_id: Annotated[str, typer.Argument(help="Receipt id (fr_...), from `orgmem receipts list ORG`.")],
    as_json: JsonFlag = False,
) -> None:
    """What a forget did: document, checkpoints, head move, objects deleted, actor, time."""
    from orgmem.db.models import Org
    from orgmem.db.session import get_row
    from orgmem.lineage.receipts import get_receipt, receipt_dict, receipt_text

    with db_session() as session:
        receipt = get_receipt(session, receipt_id)
        data = receipt_dict(receipt, get_row(session, Org, receipt.org_id).slug)
    emit(data, as_json, lambda: receipt_text(data))
