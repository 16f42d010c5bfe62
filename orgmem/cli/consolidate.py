"""``orgmem consolidate ORG [--wait] [--inline]``: write an org's pending material into its memory.

Queued by default (the ``consolidate`` queue; a worker runs it): prints the job id at once.
``--wait`` follows the job until it ends; ``--inline`` runs the same job in this process (no
worker needed). Either way the result is a gated checkpoint: promoted, or rejected with reasons.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from orgmem.cli.common import ActorOption, JsonFlag, OrgArg, actor_or_default, db_session, emit
from orgmem.errors import OrgmemError


def parse_json_object(text: str | None, option: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OrgmemError(f"{option} is not valid JSON ({exc}): {text!r}") from None
    if not isinstance(value, dict):
        raise OrgmemError(f"{option} must be a JSON object such as '{{\"epochs\": 2}}', got {text!r}")
    return value


def job_line(view: dict[str, Any]) -> str:
    """One line per job state: what ``--wait`` prints as the job moves."""
    line = f"job {view['id']} {view['status']} {view['progress']:.0%}"
    if view.get("error"):
        line += f": {view['error']}"
    return line


def result_text(view: dict[str, Any]) -> str:
    result = view.get("result") or {}
    if view["status"] != "succeeded":
        return job_line(view)
    if result.get("status") == "nothing_to_do":
        group = result.get("audience") or "org"
        whose = f"org {result.get('org')!r}" + ("" if group == "org" else f" group {group!r}")
        return f"job {view['id']} succeeded: nothing pending for {whose}"
    if "checkpoint_id" not in result:
        return job_line(view)
    reasons = (result.get("gate") or {}).get("reasons") or []
    group = result.get("audience") or "org"
    lines = [
        f"job {view['id']} succeeded: checkpoint {result['checkpoint_id']} {result['status']}"
        f"{'' if group == 'org' else f' (group {group!r})'} "
        f"(parent {result.get('parent_id') or '-'}, {result.get('n_new')} new + {result.get('n_replay')} "
        f"replayed chunks)"
    ]
    lines += [f"  gate: {r}" for r in reasons]
    return "\n".join(lines)


def follow(job_id: str, timeout: float | None, quiet: bool) -> dict[str, Any]:
    from orgmem.ops.jobs import wait_for

    def show(view: dict[str, Any]) -> None:
        if not quiet:
            typer.echo(job_line(view), err=True)

    try:
        return wait_for(job_id, timeout=timeout, poll=1.0, on_update=show)
    except TimeoutError as exc:
        raise OrgmemError(f"{exc}; it keeps running: `orgmem jobs show {job_id}`") from None


def command(
    org: OrgArg,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the job until it finishes.")] = False,
    inline: Annotated[bool, typer.Option("--inline", help="Run here instead of on a worker.")] = False,
    engine: Annotated[str | None, typer.Option("--engine", help="Engine overrides, JSON object.")] = None,
    pipeline: Annotated[
        str | None, typer.Option("--pipeline", help="Pipeline overrides, JSON object.")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Give up waiting after N seconds.")
    ] = None,
    audience: Annotated[
        str,
        typer.Option("--audience", help="'org' (default) or a group: train that group's own memory."),
    ] = "org",
    actor: ActorOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Consolidate ORG's pending chunks into a new checkpoint, evaluate it and gate it."""
    from orgmem.jobs import job_queue
    from orgmem.lineage.audiences import ORG_AUDIENCE, validate_audience
    from orgmem.ops.jobs import create_consolidation, run_inline

    params: dict[str, Any] = {
        "engine": parse_json_object(engine, "--engine"),
        "pipeline": parse_json_object(pipeline, "--pipeline"),
    }
    params = {k: v for k, v in params.items() if v}
    if validate_audience(audience) != ORG_AUDIENCE:
        params["audience"] = audience
    with db_session():
        pass  # refuses an unmigrated database with the fix
    job_id = create_consolidation(org, actor=actor_or_default(actor), params=params)
    if inline:
        run_inline(job_id)
    else:
        job_queue().send(job_id)
        if not wait:
            emit({"job": job_id, "status": "queued"}, as_json, job_id)
            return
    view = follow(job_id, timeout, quiet=as_json) if not inline else _view(job_id)
    emit(view, as_json, lambda: result_text(view))
    if view["status"] != "succeeded":
        raise typer.Exit(1)


def _view(job_id: str) -> dict[str, Any]:
    from orgmem.jobs import get_job, job_dict

    with db_session() as session:
        return job_dict(session, get_job(session, job_id))
