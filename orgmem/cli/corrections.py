"""``orgmem corrections list|show|approve|reject|policy ORG ...``: the review queue of user corrections.

A correction proposed through ``POST /v1/feedback`` (or the console chat) is pending until an admin
approves it (the audience's next consolidation learns it, with priority over older statements of
the same fact) or rejects it (never trained). ``policy`` sets the role whose corrections are
approved when proposed. Every decision is an audit event (``orgmem audit ORG --action correction``).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from orgmem.cli.common import (
    ActorOption,
    JsonFlag,
    ListByDefault,
    OrgArg,
    actor_or_default,
    db_session,
    emit,
    emit_table,
)

app = typer.Typer(cls=ListByDefault, help="Review users' corrections: list, show, approve, reject, policy.",
                  no_args_is_help=True)

IdArg = Annotated[str, typer.Argument(help="Correction id (cor_...), from `orgmem corrections list ORG`.")]
ReviewReason = Annotated[str | None, typer.Option("--reason", help="Why; recorded in the audit.")]
StatusOption = Annotated[str | None, typer.Option(
    "--status", help="Only corrections in this state: pending | approved | rejected | consumed.")]


def _clip(text: str, n: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


@app.command("list")
def list_(org: OrgArg, status: StatusOption = None, as_json: JsonFlag = False) -> None:
    """The org's corrections, newest first; CONFLICTS counts the documents that say otherwise."""
    from orgmem.ops import feedback

    with db_session() as session:
        rows = feedback.listing(session, org, status=status)
    table = [(c["id"], c["status"], c["audience"], _clip(c["question"]), _clip(c["model_answer"], 30),
              _clip(c["proposed_answer"], 30), c["proposer"], len(c["conflicting_documents"]))
             for c in rows]
    headers = ["CORRECTION", "STATUS", "AUDIENCE", "QUESTION", "MODEL SAID", "PROPOSED", "BY", "CONFLICTS"]
    emit_table(rows, as_json, headers, table, f"org {org!r} has no corrections"
               + (f" with status {status!r}" if status else ""))


def _text(c: dict[str, Any]) -> str:
    lines = [f"correction {c['id']} ({c['status']}, audience {c['audience']})",
             f"  question:   {c['question']}", f"  model said: {c['model_answer']}",
             f"  proposed:   {c['proposed_answer']}", f"  by:         {c['proposer']} at {c['created_at']}",
             f"  answered by checkpoint(s) {c['answered_by'] or '-'} (response {c['response_id'] or '-'})"]
    if c["comment"]:
        lines.append(f"  comment:    {c['comment']}")
    found = c.get("conflicts_now", c["conflicts"])
    if found:
        lines.append("  documents that currently say otherwise:")
        lines += [f"    {x['document']} ({x['source']}): {x['excerpt']}" for x in found]
    else:
        lines.append("  no live document found that says otherwise")
    if c["reviewed_by"]:
        lines.append(f"  reviewed by {c['reviewed_by']} at {c['reviewed_at']}"
                     + (f": {c['review_reason']}" if c["review_reason"] else ""))
    if c["consumed_checkpoint_id"]:
        lines.append(f"  learned by checkpoint {c['consumed_checkpoint_id']}")
    return "\n".join(lines)


@app.command("show")
def show(org: OrgArg, correction_id: IdArg, as_json: JsonFlag = False) -> None:
    """One correction: question, the model's answer, the proposal, who, and conflicting documents."""
    from orgmem.ops import feedback

    with db_session() as session:
        data = feedback.show(session, org, correction_id)
    emit(data, as_json, lambda: _text(data))


def _review(org: str, correction_id: str, approve: bool, reason: str | None, actor: str | None,
            as_json: bool) -> None:
    from orgmem.ops import feedback

    with db_session(write=True) as session:
        data = feedback.review_correction(session, org, correction_id, approve=approve,
                                          actor=actor_or_default(actor), reason=reason)
    then = ("the next consolidation of " + data["audience"] + " learns it") if approve else "it never trains"
    emit(data, as_json, f"{data['status']} correction {data['id']}: {then}")


@app.command("approve")
def approve(org: OrgArg, correction_id: IdArg,
            reason: ReviewReason = None,
            actor: ActorOption = None, as_json: JsonFlag = False) -> None:
    """Approve a pending correction: material of its audience's next consolidation."""
    _review(org, correction_id, True, reason, actor, as_json)


@app.command("reject")
def reject(org: OrgArg, correction_id: IdArg,
           reason: ReviewReason = None,
           actor: ActorOption = None, as_json: JsonFlag = False) -> None:
    """Reject a pending correction: it never trains the memory."""
    _review(org, correction_id, False, reason, actor, as_json)


@app.command("policy")
def policy(org: OrgArg,
           auto_approve_role: Annotated[str | None, typer.Option(
               "--auto-approve-role", help="admin | employee: their corrections skip review; 'none': "
               "every correction is reviewed. Omitted: show the policy and the feedback counts.")] = None,
           actor: ActorOption = None, as_json: JsonFlag = False) -> None:
    """Show the feedback counts and review policy, or set which role's corrections are auto-approved."""
    from orgmem.ops import feedback

    if auto_approve_role is not None:
        role = None if auto_approve_role.lower() == "none" else auto_approve_role
        with db_session(write=True) as session:
            feedback.set_policy(session, org, role, actor=actor_or_default(actor))
    with db_session() as session:
        data = feedback.counts(session, org)
    emit(data, as_json, lambda: (
        f"org {org}: corrections from {data['auto_approve_role'] or 'no role'} are auto-approved; "
        f"ratings up {data['ratings']['up']} down {data['ratings']['down']}; corrections "
        + ", ".join(f"{k} {v}" for k, v in data["corrections"].items())
        + f"; {data['pending_conflicting']} pending conflict with documents"))
