"""``orgmem forget ORG DOC``: take a document out of an org's memory, past and future; print the receipt."""

from __future__ import annotations

from typing import Annotated

import typer

from orgmem.cli.common import ActorOption, JsonFlag, ReasonOption, actor_or_default, db_session, emit


def command(
    org: Annotated[str, typer.Argument(help="Org slug.")],
    document: Annotated[str, typer.Argument(help="Document id, path / external id, or URI.")],
    replay: Annotated[
        bool, typer.Option("--replay/--no-replay", help="Queue a consolidation of the rest.")
    ] = True,
    actor: ActorOption = None,
    reason: ReasonOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Roll back past every checkpoint trained on DOCUMENT, quarantine them, never train on it again."""
    from orgmem.errors import OrgmemError
    from orgmem.lineage import get_org
    from orgmem.lineage.receipts import get_receipt, receipt_dict, receipt_text, set_replay_job
    from orgmem.ops.jobs import submit_consolidation
    from orgmem.pipeline.forget import forget_document

    who = actor_or_default(actor)
    with db_session(write=True) as session:
        result = forget_document(session, org, document, actor=who, reason=reason)
    note = None
    if replay and result.quarantined:
        try:
            job = submit_consolidation(org, actor=who, params={"after_forget": result.document})
            with db_session(write=True) as session:
                set_replay_job(session, result.receipt_id, job)
        except OrgmemError as exc:
            note = f"replay not queued: {exc}"
    with db_session() as session:
        data = receipt_dict(get_receipt(session, result.receipt_id), org)
        data["org"] = get_org(session, org).slug
    if note:
        data["replay_note"] = note
    emit(data, as_json, lambda: receipt_text(data) + (f"\n{note}" if note else ""))
