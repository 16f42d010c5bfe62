"""``orgmem forget ORG DOC``: take a document out of an org's memory, past and future; print the receipt."""

from __future__ import annotations

from typing import Annotated

import typer

from orgmem.cli.common import ActorOption, JsonFlag, OrgArg, ReasonOption, actor_or_default, db_session, emit


def command(
    org: OrgArg,
    document: Annotated[str, typer.Argument(help="Document id, path / external id, or URI.")],
    replay: Annotated[
        bool, typer.Option("--replay/--no-replay", help="Queue a consolidation of the rest.")
    ] = True,
    actor: ActorOption = None,
    reason: ReasonOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Roll back past every checkpoint trained on DOCUMENT, quarantine them, never train on it again."""
    from orgmem.lineage.receipts import receipt_text
    from orgmem.ops.forget import forget

    with db_session():
        pass  # refuses an unmigrated database with the fix
    done = forget(org, document, actor=actor_or_default(actor), reason=reason, replay=replay)
    data, note = dict(done.receipt), done.replay_note
    data["org"] = done.org
    if note:
        data["replay_note"] = note
    emit(data, as_json, lambda: receipt_text(data) + (f"\n{note}" if note else ""))
