"""The console's state-changing requests (POST): log in and out, the org actions, and chat.

Each org action is confirmed on its own page first (``pages.confirm``), carries the CSRF token,
and calls the ``orgmem.ops`` function the ``/api`` route calls too (pin, unpin, rollback, sync,
consolidate, forget), with the key's identity as the recorded actor. The
result comes back as a flash message on the page the action belongs to (a forget's links to its
receipt). Pin and rollback move the lineage of the checkpoint's own audience; unpin and the page
returned to take the form's ``audience`` (the org's, or a group the key carries). The operator
key reads only: every action refuses it (``security.console_org_admin``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.responses import JSONResponse, Response

from orgmem.api import admin_routes, openai_routes
from orgmem.api.auth import get_state
from orgmem.api.errors import public_error
from orgmem.api.openai_schema import ChatCompletionBody
from orgmem.console import security
from orgmem.console.render import ConsoleRoute, redirect, render
from orgmem.console.views import short
from orgmem.db.models import Org
from orgmem.errors import ApiError, OrgmemError
from orgmem.keys import ApiKeyIdentity
from orgmem.lineage import get_org
from orgmem.lineage.audiences import ORG_AUDIENCE, head_holder
from orgmem.ops import transitions
from orgmem.ops.forget import forget
from orgmem.ops.jobs import submit_consolidation, submit_sync
from orgmem.serving.resolve import GROUP_SEPARATOR, own_checkpoint

logger = logging.getLogger(__name__)

router = APIRouter(prefix=security.PATH, route_class=ConsoleRoute, include_in_schema=False)

CHAT_MAX_TOKENS = 512


@dataclass(frozen=True)
class ActionSpec:
    title: str
    page: str  # the org page the result is shown on
    needs_checkpoint: bool = False
    needs_document: bool = False
    reason_required: bool = False
    danger: bool = False


ACTIONS: dict[str, ActionSpec] = {
    "sync": ActionSpec("Sync sources", ""),
    "consolidate": ActionSpec("Consolidate pending data", ""),
    "pin": ActionSpec("Pin checkpoint", "/checkpoints", needs_checkpoint=True),
    "unpin": ActionSpec("Unpin", "/checkpoints"),
    "rollback": ActionSpec("Roll back", "/checkpoints", needs_checkpoint=True, reason_required=True,
                           danger=True),
    "forget": ActionSpec("Forget a document", "", needs_document=True, danger=True),
}


@dataclass(frozen=True)
class Plan:
    """What the confirmation page says an action will do, and which lineage it moves."""

    summary: str
    audience: str = ORG_AUDIENCE


def _of(audience: str) -> str:
    return "" if audience == ORG_AUDIENCE else f" (group {audience!r})"


def describe(session: Session, org: Org, action: str, *, checkpoint: str | None = None,
             document: str | None = None, audience: str = ORG_AUDIENCE, groups: tuple[str, ...] = ()
             ) -> Plan:
    """What ``action`` will do; refuses a missing, foreign or hidden checkpoint or document. A
    checkpoint's own audience decides the lineage (as in ``orgmem.lineage.transitions``)."""
    spec = ACTIONS[action]
    if spec.needs_checkpoint:
        if not checkpoint:
            raise ApiError(400, f"{action} needs a checkpoint", param="checkpoint")
        audience = own_checkpoint(session, org, checkpoint, groups).audience
    if spec.needs_document:
        if not document:
            raise ApiError(400, "forget needs a document (its id, path / external id or URI)",
                           param="document")
        from orgmem.pipeline.forget import find_document

        doc = find_document(session, org, document)
        document = f"{doc.external_id} (document {doc.id})"
    holder = head_holder(session, org, audience)
    pinned = holder.pinned_checkpoint_id if holder is not None else None
    summary = {
        "sync": f"Queue a sync of every enabled source of {org.slug}.",
        "consolidate": f"Queue a consolidation of {org.slug}'s pending data into a new checkpoint.",
        "pin": f"Serve checkpoint {checkpoint} for {org.slug}{_of(audience)} until unpinned.",
        "unpin": f"Stop serving the pinned checkpoint {short(pinned)} of {org.slug}{_of(audience)}; "
                 "serve the head again.",
        "rollback": f"Move {org.slug}{_of(audience)}'s head back to {checkpoint}; data only its abandoned "
                    "descendants consumed becomes pending again.",
        "forget": f"Forget {document}: roll back past every checkpoint trained on it, quarantine them, "
                  "never train on it again, and queue a consolidation of the rest.",
    }[action]
    return Plan(summary, audience)


# -- login / logout ------------------------------------------------------------------------------

@router.post("/login")
async def login(request: Request) -> Response:
    form = await security.checked_form(request)
    key = form.get("api_key", "").strip()
    if not key:
        return render(request, "login.html", {"error": "paste an admin API key of your org"}, status=401)
    identity = security.authenticate_key(request, key)  # 401 / 403 / 429 pages via ConsoleRoute
    if isinstance(identity, security.OperatorIdentity):
        done, home = "logged in as the installation operator: every org, read-only", "/orgs"
    else:
        done = f"logged in to {identity.org_slug} with key {identity.prefix}… ({identity.name})"
        home = f"/orgs/{identity.org_slug}"
    response = redirect(request, f"{security.PATH}{home}", ("ok", done))
    security.set_key_cookie(request, response, key)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await security.checked_form(request)
    response = redirect(request, f"{security.PATH}/login", ("ok", "logged out"))
    security.clear_key_cookie(request, response)
    return response


# -- org actions ---------------------------------------------------------------------------------

Flash = tuple[str, str] | tuple[str, str, str]  # (kind, text[, link to a console page])


def _forget(request: Request, identity: ApiKeyIdentity, org: str, document: str, reason: str | None) -> Flash:
    """Forget, receipt, and queue the replay of the rest (as ``POST /api/orgs/{org}/forget``)."""
    if not document:
        raise ApiError(400, "forget needs a document (its id, path / external id or URI)", param="document")
    state = get_state(request)
    done = forget(org, document, actor=identity.actor, reason=reason, store=state.store, url=state.db_url)
    out = done.receipt
    text = (f"forgot {out['document']!r} (receipt {out['id']}): {out['chunks_excluded']} chunk(s) excluded; "
            f"quarantined {', '.join(out['quarantined']) or 'nothing'}; head {short(out['head_before'])} -> "
            f"{short(out['head_after'])}")
    if out.get("replay_job"):
        text += f"; replay queued as job {out['replay_job']}"
    elif done.replay_note:
        text += f"; {done.replay_note}"
    return "ok", text, f"{security.PATH}/orgs/{org}/receipts/{quote(out['id'])}"


def _serving(action: str, request: Request, background: BackgroundTasks, identity: ApiKeyIdentity, org: str,
             checkpoint: str, reason: str | None, audience: str) -> Flash:
    """Pin, unpin or roll back (as the ``/api`` routes: the key's own checkpoints, the server warmed)."""
    warm = admin_routes.warm_hook(request, background, identity)
    with get_state(request).session(write=True) as session:
        if action == "unpin":
            out = transitions.unpin_org(session, org, actor=identity.actor, reason=reason, audience=audience,
                                        warm=warm)
            return "ok", f"unpinned{_of(audience)}; serving {short(out['served_checkpoint_id'])}"
        own_checkpoint(session, get_org(session, org), checkpoint, identity.groups)
        if action == "pin":
            out = transitions.pin_checkpoint(session, org, checkpoint, actor=identity.actor, reason=reason,
                                             warm=warm)
            return "ok", f"pinned {checkpoint}; serving {short(out['served_checkpoint_id'])}"
        out = transitions.rollback_org(session, org, checkpoint, actor=identity.actor, reason=reason,
                                       warm=warm)
    pending = out.get("chunks_to_pending")
    back = f"; {pending} chunk(s) pending again" if pending else ""
    return "ok", f"rolled back to {checkpoint}; serving {short(out['served_checkpoint_id'])}{back}"


def _run(action: str, request: Request, background: BackgroundTasks, identity: ApiKeyIdentity, org: str,
         form: dict[str, str], audience: str) -> Flash:
    """Do ``action`` through the same ``orgmem.ops`` functions as the API; returns the flash message."""
    ck = form.get("checkpoint", "").strip()
    reason = form.get("reason", "").strip() or None
    if ACTIONS[action].reason_required and not reason:
        raise ApiError(400, f"{action} needs a reason (it is recorded in the serving history)",
                       param="reason")
    if action == "sync":
        return "ok", f"sync queued as job {submit_sync(org, actor=identity.actor)}"
    if action == "consolidate":
        job = submit_consolidation(org, actor=identity.actor, params={})
        return "ok", f"consolidation queued as job {job}"
    if action == "forget":
        return _forget(request, identity, org, form.get("document", "").strip(), reason)
    return _serving(action, request, background, identity, org, ck, reason, audience)


@router.post("/orgs/{org}/actions/{action}")
async def act(org: str, action: str, request: Request, background: BackgroundTasks,
              identity: ApiKeyIdentity = Depends(security.console_org_admin)) -> Response:
    form = await security.checked_form(request)
    if action not in ACTIONS:
        raise ApiError(404, f"unknown console action {action!r}; one of {sorted(ACTIONS)}",
                       "not_found_error", "not_found")
    audience = security.reachable_audience(identity, form.get("audience"))
    target = f"{security.PATH}/orgs/{org}{ACTIONS[action].page}"
    if audience != ORG_AUDIENCE:
        target += f"?audience={quote(audience, safe='')}"
    try:
        flash: Flash = _run(action, request, background, identity, org, form, audience)
    except OrgmemError as exc:  # refused (conflict, unknown checkpoint...): say why, change nothing
        flash = ("error", f"{ACTIONS[action].title} failed: {public_error(request, exc)}")
    logger.info("console action", extra={"org": org, "action": action, "actor": identity.actor,
                                         "outcome": flash[0]})
    return redirect(request, target, flash, background=background)


# -- chat ----------------------------------------------------------------------------------------

def _chat_body(org: str, payload: dict[str, Any]) -> ChatCompletionBody:
    model = str(payload.get("model") or org)
    if model != org and not model.startswith((f"{org}@", f"{org}{GROUP_SEPARATOR}")):
        raise ApiError(400, f"model {model!r} is not {org!r}, {org}@CHECKPOINT or {org}#GROUP", param="model")
    try:
        max_tokens = int(payload.get("max_tokens") or 64)
    except (TypeError, ValueError):
        raise ApiError(400, "max_tokens must be a whole number", param="max_tokens") from None
    if not 1 <= max_tokens <= CHAT_MAX_TOKENS:
        raise ApiError(400, f"max_tokens must be 1-{CHAT_MAX_TOKENS}", param="max_tokens")
    return ChatCompletionBody(model=model, messages=payload.get("messages") or [], max_tokens=max_tokens,
                              temperature=0)


@router.post("/orgs/{org}/chat")
async def chat(org: str, request: Request,
               identity: ApiKeyIdentity = Depends(security.console_org_admin)) -> Response:
    """One chat turn through ``/v1/chat/completions``'s own code; JSON in and out (the page's script)."""
    security.check_csrf(request, request.headers.get(security.CSRF_HEADER))
    try:
        payload = json.loads(await request.body() or b"{}")
        if not isinstance(payload, dict):
            raise ApiError(400, "the chat request must be a JSON object")
        body = _chat_body(org, payload)
        body.conversation()  # validates messages before the engine sees them
        response = await openai_routes.chat_completions(body, request, identity)
    except json.JSONDecodeError as exc:
        return JSONResponse(ApiError(400, f"the chat request is not JSON: {exc}").body(), status_code=400)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse(ApiError(400, f"invalid chat request: {where}: {first['msg']}").body(),
                            status_code=400)
    except Exception as exc:
        err = public_error(request, exc)
        return JSONResponse(err.body(), status_code=err.status)
    data = json.loads(response.body)
    return JSONResponse({"reply": data["choices"][0]["message"]["content"], "response_id": data["id"],
                         "finish_reason": data["choices"][0]["finish_reason"],
                         "checkpoint": response.headers.get(openai_routes.CHECKPOINT_HEADER),
                         "usage": data.get("usage")})
