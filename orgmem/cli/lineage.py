"""Lineage commands: the checkpoint tree, one checkpoint, pin/unpin, promote, rollback, history.

Each takes ``--audience`` (default ``org``) to act on a group's own lineage instead; pin, promote
and rollback take the lineage from the checkpoint itself, ``--audience`` only double-checks it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from orgmem.checkpoints.metrics import feedback_summary
from orgmem.cli.common import (
    ActorOption,
    JsonFlag,
    OrgArg,
    ReasonOption,
    actor_or_default,
    db_session,
    emit,
    emit_table,
    format_table,
    parse_time,
    short_time,
)
from orgmem.db.models import AudienceHead, Checkpoint, CheckpointInput, Org
from orgmem.errors import ConflictError, NotFoundError
from orgmem.lineage import event_dict, get_checkpoint, get_org, list_tree, served_at, serving_history
from orgmem.lineage.audiences import ORG_AUDIENCE, head_holder, validate_audience
from orgmem.ops.transitions import pin_checkpoint, promote_checkpoint, rollback_org, unpin_org

CheckpointArg = Annotated[str, typer.Argument(help="Checkpoint id (ck_...).")]
AudienceOption = Annotated[
    str, typer.Option("--audience", help="'org' (default) or a group: that group's own lineage.")
]
ExpectAudienceOption = Annotated[
    str | None,
    typer.Option("--audience", help="Refuse unless the checkpoint is of this audience ('org' or a group)."),
]

checkpoint_app = typer.Typer(help="Inspect or promote one checkpoint.", no_args_is_help=True)


def key_metrics(metrics: dict[str, Any], limit: int = 3) -> str:
    numbers = [
        (k, v) for k, v in sorted(metrics.items()) if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    text = " ".join(f"{k}={v:.3g}" for k, v in numbers[:limit])
    fb = metrics.get("feedback")
    if isinstance(fb, dict):  # the gate report: answers changed by user-supplied material
        text += f" corrections={fb.get('corrections', 0)} changed={fb.get('answers_changed', 0)}"
    return text


def checkpoints(org: OrgArg, audience: AudienceOption = ORG_AUDIENCE, as_json: JsonFlag = False) -> None:
    """Show an org's checkpoint tree: id, parent, status, created, key metrics, what is served."""
    with db_session() as session:
        the_org = get_org(session, org)
        nodes = list_tree(session, the_org, validate_audience(audience))
        holder = head_holder(session, the_org, audience)
        data: dict[str, Any] = {
            "org": org,
            "audience": audience,
            "head_checkpoint_id": holder.head_checkpoint_id if holder else None,
            "pinned_checkpoint_id": holder.pinned_checkpoint_id if holder else None,
            "served_checkpoint_id": holder.served_checkpoint_id if holder else None,
            "checkpoints": [node.as_dict() for node in nodes],
        }

    def text() -> str:
        if not data["checkpoints"]:
            whose = "" if audience == ORG_AUDIENCE else f" for group {audience!r}"
            return f"org {org!r} has no checkpoints{whose} yet"
        rows = []
        for node in data["checkpoints"]:
            marks = [m for m in ("served", "head", "pinned") if node[m]]
            tree = "  " * (node["depth"] - 1) + "└─ " if node["depth"] else ""
            rows.append(
                (
                    tree + node["id"],
                    node["parent_id"] or "-",
                    node["status"],
                    short_time(parse_time(node["created_at"])),
                    key_metrics(node["metrics"]),
                    ",".join(marks),
                )
            )
        return format_table(["CHECKPOINT", "PARENT", "STATUS", "CREATED", "METRICS", ""], rows)

    emit(data, as_json, text)


def _org_of(session: Session, ck: Checkpoint) -> Org:
    org = session.get(Org, ck.org_id)
    if org is None:
        raise NotFoundError(f"checkpoint {ck.id!r} names org id {ck.org_id}, which does not exist")
    return org


def _checkpoint_details(session: Session, ck: Checkpoint) -> dict[str, Any]:
    org = _org_of(session, ck)
    roles = dict(
        session.execute(
            select(CheckpointInput.role, func.count())
            .where(CheckpointInput.checkpoint_id == ck.id)
            .group_by(CheckpointInput.role)
        ).all()
    )
    children = list(session.scalars(select(Checkpoint.id).where(Checkpoint.parent_id == ck.id)))
    holder: Org | AudienceHead = head_holder(session, org, ck.audience) or org
    return {
        "id": ck.id,
        "org": org.slug,
        "audience": ck.audience,
        "parent_id": ck.parent_id,
        "status": ck.status,
        "created_at": ck.created_at.isoformat(),
        "created_by": ck.created_by,
        "job_id": ck.job_id,
        "base_model": ck.base_model,
        "base_fingerprint": ck.base_fingerprint,
        "memory_kind": ck.memory_kind,
        "memory_config": ck.memory_config,
        "metrics": ck.metrics,
        "input_digest": ck.input_digest,
        "inputs": {"new": roles.get("new", 0), "replay": roles.get("replay", 0)},
        "objects": [{"name": o.name, "key": o.key, "sha256": o.sha256, "size": o.size} for o in ck.objects],
        "children": children,
        "notes": ck.notes,
        "head": holder.head_checkpoint_id == ck.id,
        "pinned": holder.pinned_checkpoint_id == ck.id,
        "served": holder.served_checkpoint_id == ck.id,
    }


def _expect_audience(session: Session, org: str, checkpoint_id: str, audience: str | None) -> None:
    """``--audience`` given with a checkpoint: refuse a checkpoint of another lineage by name."""
    if audience is None:
        return
    ck = get_checkpoint(session, checkpoint_id, get_org(session, org))
    if ck.audience != validate_audience(audience):
        raise ConflictError(
            f"checkpoint {checkpoint_id!r} belongs to audience {ck.audience!r}, not {audience!r}"
        )


@checkpoint_app.command("show")
def show(checkpoint_id: CheckpointArg, as_json: JsonFlag = False) -> None:
    """Everything recorded about one checkpoint: lineage, inputs, objects, metrics."""
    with db_session() as session:
        data = _checkpoint_details(session, get_checkpoint(session, checkpoint_id))

    def text() -> str:
        marks = [m for m in ("served", "head", "pinned") if data[m]]
        lines = [
            f"{k:<16} {data[k]}"
            for k in (
                "id",
                "org",
                "audience",
                "parent_id",
                "status",
                "created_at",
                "created_by",
                "base_model",
                "memory_kind",
                "input_digest",
            )
        ]
        lines += [
            f"{'inputs':<16} {data['inputs']['new']} new, {data['inputs']['replay']} replay",
            f"{'metrics':<16} {data['metrics']}",
            *([f"{'user material':<16} {fb}"] if (fb := feedback_summary(data["metrics"])) else []),
            f"{'children':<16} {', '.join(data['children']) or '-'}",
            f"{'marks':<16} {', '.join(marks) or '-'}",
            "objects:",
        ]
        lines += [f"  {o['name']:<26} {o['size']:>12} B  sha256 {o['sha256'][:16]}" for o in data["objects"]]
        return "\n".join(lines)

    emit(data, as_json, text)


def _apply(
    org: str | None,
    run: Callable[[Session], dict[str, Any]],
    as_json: bool,
    summary: Callable[[dict[str, Any]], str],
) -> None:
    """Run one serving change in a write transaction and report it (JSON or one line)."""
    with db_session(write=True) as session:
        data = run(session)
    if org is not None:
        data = {"org": org, **data}
    served, head = data["served_checkpoint_id"] or "nothing", data["head_checkpoint_id"] or "-"
    emit(data, as_json, lambda: f"{summary(data)}; now serving {served} (head {head})")


@checkpoint_app.command("promote")
def promote_cmd(
    checkpoint_id: CheckpointArg,
    force: Annotated[bool, typer.Option("--force", help="Promote even if the gate rejected it.")] = False,
    reason: ReasonOption = None,
    actor: ActorOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Make a checkpoint built on the head the new head (and served, unless pinned)."""

    def run(session: Session) -> dict[str, Any]:
        org = _org_of(session, get_checkpoint(session, checkpoint_id))
        return promote_checkpoint(session, org, checkpoint_id, actor=actor_or_default(actor), reason=reason,
                                  force=force)

    _apply(None, run, as_json, lambda d: f"promoted {checkpoint_id}" + (" (forced)" if force else ""))


def _checkpoint_command(
    change: Callable[..., dict[str, Any]], summary: Callable[[str, str, dict[str, Any]], str], doc: str
) -> Callable[..., None]:
    """``pin`` and ``rollback``: the same options, ``--audience`` checked against the checkpoint, then
    the one serving change; only the change and its one-line summary differ."""

    def command(
        org: OrgArg,
        checkpoint_id: CheckpointArg,
        reason: ReasonOption = None,
        actor: ActorOption = None,
        audience: ExpectAudienceOption = None,
        as_json: JsonFlag = False,
    ) -> None:
        def run(session: Session) -> dict[str, Any]:
            _expect_audience(session, org, checkpoint_id, audience)
            return change(session, org, checkpoint_id, actor=actor_or_default(actor), reason=reason)

        _apply(org, run, as_json, lambda d: summary(org, checkpoint_id, d))

    command.__doc__ = doc
    return command


pin_cmd = _checkpoint_command(
    pin_checkpoint,
    lambda org, checkpoint_id, d: f"pinned {org} to {checkpoint_id}",
    "Serve this checkpoint until unpinned, whatever gets promoted meanwhile.",
)


def unpin_cmd(
    org: OrgArg,
    reason: ReasonOption = None,
    actor: ActorOption = None,
    audience: AudienceOption = ORG_AUDIENCE,
    as_json: JsonFlag = False,
) -> None:
    """Serve the head again."""
    _apply(
        org,
        lambda s: unpin_org(s, org, actor=actor_or_default(actor), reason=reason, audience=audience),
        as_json,
        lambda d: f"unpinned {org}",
    )


rollback_cmd = _checkpoint_command(
    rollback_org,
    lambda org, checkpoint_id, d: (
        f"rolled {org} back to {checkpoint_id} (abandoned {', '.join(d.get('abandoned', []))}; "
        f"{d.get('chunks_to_pending', 0)} chunk(s) pending again)"
    ),
    "Move the head back to an ancestor; data only the abandoned branch consumed becomes pending.",
)


def history(
    org: OrgArg,
    at: Annotated[str | None, typer.Option("--at", help="ISO time: show what was served then.")] = None,
    audience: AudienceOption = ORG_AUDIENCE,
    as_json: JsonFlag = False,
) -> None:
    """What the org served over time: every pin, unpin, promotion, rollback — who, when, why."""
    validate_audience(audience)
    with db_session() as session:
        the_org = get_org(session, org)
        if at is not None:
            state = served_at(session, the_org, parse_time(at), audience).as_dict()
            emit({"org": org, **state}, as_json, lambda: _served_text(org, state))
            return
        events = [event_dict(e) for e in serving_history(session, the_org, audience)]
    rows = [
        (
            short_time(parse_time(e["at"])),
            e["action"],
            e["checkpoint_id"] or "-",
            e["served_checkpoint_id"] or "-",
            e["actor"],
            e["reason"] or "",
        )
        for e in events
    ]
    headers = ["AT", "ACTION", "CHECKPOINT", "SERVED AFTER", "ACTOR", "REASON"]
    empty = f"org {org!r} has no serving history yet"
    emit_table({"org": org, "events": events}, as_json, headers, rows, empty)


def _served_text(org: str, state: dict[str, Any]) -> str:
    event = state["event"]
    if event is None:
        return f"at {state['at']} org {org!r} served nothing"
    why = f": {event['reason']}" if event["reason"] else ""
    return (
        f"at {state['at']} org {org!r} served {state['served_checkpoint_id'] or 'nothing'}, "
        f"since {state['since']} ({event['action']} {event['checkpoint_id']} by {event['actor']}{why})"
    )


def register(app: typer.Typer) -> None:
    app.command("checkpoints")(checkpoints)
    app.add_typer(checkpoint_app, name="checkpoint")
    app.command("pin")(pin_cmd)
    app.command("unpin")(unpin_cmd)
    app.command("rollback")(rollback_cmd)
    app.command("history")(history)
