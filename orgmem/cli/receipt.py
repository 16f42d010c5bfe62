"""``orgmem receipt show ID``: one forget receipt in full."""

from __future__ import annotations

from typing import Annotated

import typer

from orgmem.cli.common import JsonFlag, db_session, emit

app = typer.Typer(help="Forget receipts.", no_args_is_help=True)


@app.command("show")
def show(
    receipt_id: Annotated[str, typer.Argument(help="Receipt id (fr_...), from `orgmem receipts ORG`.")],
    as_json: JsonFlag = False,
) -> None:
    """What a forget did: document, checkpoints, head move, objects deleted, actor, time."""
    from orgmem.db.models import Org
    from orgmem.lineage.receipts import get_receipt, receipt_dict, receipt_text

    with db_session() as session:
        receipt = get_receipt(session, receipt_id)
        data = receipt_dict(receipt, session.get(Org, receipt.org_id).slug)
    emit(data, as_json, lambda: receipt_text(data))
