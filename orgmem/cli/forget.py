"""``orgmem forget ORG DOC``: take a document out of an org's memory, past and future."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from orgmem.cli.common import ActorOption, JsonFlag, ReasonOption, actor_or_default, db_session, emit


def _text(data: dict[str, Any]) -> str:
    lines = [
        f"forgot {data['document']!r} (document {data['document_id']}) of org {data['org']!r}: "
        f"{data['chunks_excluded']} chunk(s) excluded from training",
        f"checkpoints that saw it: {', '.join(data['saw']) or 'none'}",
        f"quarantined: {', '.join(data['quarantined']) or 'none'}",
        f"head: {data['head_before'] or '-'} -> {data['head_after'] or '-'}",
    ]
    if data.get("replay_job"):
        lines.append(f"replay consolidation: job {data['replay_job']}")
    elif data.get("replay_note"):
        lines.append(data["replay_note"])
    return "\n".join(lines)


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
    from orgmem.pipeline.forget import forget_document
    from workers.enqueue import enqueue_consolidation

    who = actor_or_default(actor)
    with db_session(write=True) as session:
        result = forget_document(session, org, document, actor=who, reason=reason)
    data = result.to_dict()
    if replay and result.quarantined:
        try:
            data["replay_job"] = enqueue_consolidation(
                org, actor=who, params={"after_forget": result.document}
            )
        except OrgmemError as exc:
            data["replay_note"] = f"replay not queued: {exc}"
    emit(data, as_json, lambda: _text(data))
