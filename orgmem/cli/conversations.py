"""``orgmem conversations enable|disable|status|turns|delete|prune ORG``: recorded chat turns.

Recording is off until an admin enables it for an org; each recorded turn is a document of the
org's built-in ``conversations`` source (docs/conversations.md). Deleting a turn, and the retention
pass, forget it through the same path as ``orgmem forget``, with a receipt each.
"""

from __future__ import annotations

from typing import Annotated

import typer

from orgmem.cli.common import (
    ActorOption,
    JsonFlag,
    OrgArg,
    ReasonOption,
    actor_or_default,
    db_session,
    emit,
    emit_table,
    parse_time,
    short_time,
)

app = typer.Typer(help="Recorded chat turns: the org's opt-in policy, its turns, deleting them.",
                  no_args_is_help=True)

ReplayOption = Annotated[bool, typer.Option("--replay/--no-replay",
                                            help="Queue a consolidation of the rest after a rollback.")]


def _policy_text(data: dict) -> str:
    state = "on" if data["enabled"] else "off"
    pii = ", ".join(data["redact_pii"]) or "none"
    who = f"; set by {data['updated_by']} at {data['updated_at']}" if data["updated_by"] else ""
    return (f"org {data['org']!r}: recording conversations {state}; turns kept {data['retention_days']} "
            f"days; PII redacted: {pii}{who}")


@app.command("enable")
def enable_(
    org: OrgArg,
    retention_days: Annotated[int, typer.Option("--retention-days", help="Days a turn is kept.")] = 30,
    redact_pii: Annotated[str, typer.Option(
        "--redact-pii", help="PII kinds to redact, comma-separated (email,phone), or 'none'.",
    )] = "email,phone",
    actor: ActorOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Record the org's chat turns from now on (audited)."""
    from orgmem.ingest.conversations import enable, policy_dict
    from orgmem.lineage import get_org

    kinds = [k.strip() for k in redact_pii.split(",") if k.strip() and k.strip().lower() != "none"]
    with db_session(write=True) as session:
        org_row = get_org(session, org)
        data = policy_dict(org_row, enable(session, org_row, retention_days=retention_days, redact_pii=kinds,
                                           actor=actor_or_default(actor)))
    emit(data, as_json, lambda: _policy_text(data))


@app.command("disable")
def disable_(org: OrgArg, actor: ActorOption = None, as_json: JsonFlag = False) -> None:
    """Stop recording (audited); recorded turns stay until deleted or past their retention."""
    from orgmem.ingest.conversations import disable, policy_dict
    from orgmem.lineage import get_org

    with db_session(write=True) as session:
        org_row = get_org(session, org)
        data = policy_dict(org_row, disable(session, org_row, actor=actor_or_default(actor)))
    emit(data, as_json, lambda: _policy_text(data))


@app.command("status")
def status(org: OrgArg, as_json: JsonFlag = False) -> None:
    """Whether the org records conversations, for how long, and what is redacted."""
    from orgmem.ingest.conversations import get_policy, policy_dict
    from orgmem.lineage import get_org

    with db_session() as session:
        org_row = get_org(session, org)
        data = policy_dict(org_row, get_policy(session, org_row))
    emit(data, as_json, lambda: _policy_text(data))


@app.command("turns")
def turns(
    org: OrgArg,
    key_id: Annotated[int | None, typer.Option("--key-id", help="Only this key's turns.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many (1-100).")] = 20,
    after: Annotated[str | None, typer.Option("--after", help="Last turn id of the previous page.")] = None,
    include_forgotten: Annotated[bool, typer.Option("--all", help="Also deleted turns.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """List the org's recorded turns, newest first."""
    from orgmem.ingest.conversations import list_turns, turn_dict
    from orgmem.lineage import get_org

    with db_session() as session:
        page = list_turns(session, get_org(session, org), key_id=key_id, limit=limit, after=after,
                          include_forgotten=include_forgotten)
        data = [turn_dict(t, admin=True) for t in page.turns]
        rows = [(t.id, short_time(t.created_at), t.key_id, t.audience,
                 "deleted" if t.forgotten_at else "live", (t.text or "").replace("\n", " ")[:60])
                for t in page.turns]
    emit_table(data, as_json, ["TURN", "AT", "KEY", "AUDIENCE", "STATE", "TEXT"], rows,
               f"org {org!r} has no recorded turns")


@app.command("delete")
def delete(
    org: OrgArg,
    turn_id: Annotated[str, typer.Argument(help="Turn id, from `orgmem conversations turns ORG`.")],
    replay: ReplayOption = True,
    actor: ActorOption = None,
    reason: ReasonOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Delete a turn: it is forgotten (rollback and quarantine of what saw it), with a receipt."""
    from orgmem.lineage.receipts import receipt_text
    from orgmem.ops.conversations import delete_turn

    with db_session():
        pass  # refuses an unmigrated database with the fix
    done = delete_turn(org, turn_id, actor=actor_or_default(actor), reason=reason, replay=replay)
    data = done.as_dict()
    receipt = receipt_text(done.receipt) if done.receipt else "its document was already gone: no receipt"
    emit(data, as_json, lambda: f"turn {turn_id} deleted\n{receipt}"
         + (f"\n{done.replay_note}" if done.replay_note else ""))


@app.command("prune")
def prune_(
    org: OrgArg,
    now: Annotated[str | None, typer.Option("--now", help="Prune as of this ISO time (default now).")] = None,
    replay: ReplayOption = True,
    actor: ActorOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Delete every turn past the org's retention now (the nightly sync does the same)."""
    from orgmem.ops.conversations import prune

    with db_session():
        pass
    done = prune(org, now=parse_time(now) if now else None, actor=actor_or_default(actor), replay=replay)
    data = done.as_dict()
    left = f"; {len(done.refused)} left for later: {done.error}" if done.refused else ""
    emit(data, as_json, lambda: f"org {org!r}: {len(done.receipts)} turn(s) past retention deleted{left}"
         + "".join(f"\n  receipt {r}" for r in done.receipts))
