"""Recorded conversations over HTTP: each key's own turns under ``/v1``, the org's policy and every
turn under ``/api`` (admin keys of the org).

``GET /v1/conversations/turns`` lists only the calling key's live turns (newest first, paged by
``after``); ``DELETE /v1/conversations/turns/{id}`` forgets one of them with a receipt. Another
key's or another org's turn id answers the same 404 as an unknown one. Admins set the policy
(``PUT /api/orgs/{org}/conversations``, audited), list and delete any turn of their org, and can
run the retention pass now (``POST .../conversations/prune``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from orgmem.api.auth import get_state, require_key, require_org_admin
from orgmem.ingest.conversations import (
    DEFAULT_RETENTION_DAYS,
    disable,
    enable,
    get_policy,
    list_turns,
    policy_dict,
    turn_dict,
)
from orgmem.keys import ApiKeyIdentity
from orgmem.lineage import get_org
from orgmem.ops.conversations import delete_turn, prune

router = APIRouter(tags=["conversations"])

LimitQuery = Query(20, ge=1, le=100, description="Turns per page (at most 100).")
AfterQuery = Query(None, description="The last turn id of the previous page.")


class PolicyUpdate(BaseModel):
    enabled: bool = Field(..., description="Record this org's chat turns from now on (false: stop).")
    retention_days: int | None = Field(None, ge=1, le=3650, description="Days a turn is kept (default 30).")
    redact_pii: list[str] | None = Field(None, description="PII kinds to redact: email, phone (default all).")


def _page(turns, has_more: bool, *, admin: bool) -> dict[str, Any]:
    data = [turn_dict(t, admin=admin) for t in turns]
    return {"object": "list", "data": data, "has_more": has_more, "last_id": data[-1]["id"] if data else None}


@router.get("/v1/conversations/turns", summary="The calling key's recorded chat turns, newest first")
def my_turns(request: Request, identity: ApiKeyIdentity = Depends(require_key), limit: int = LimitQuery,
             after: str | None = AfterQuery) -> dict[str, Any]:
    with get_state(request).session() as session:
        page = list_turns(session, get_org(session, identity.org_slug), key_id=identity.key_id, limit=limit,
                          after=after)
        return _page(page.turns, page.has_more, admin=False)


@router.delete("/v1/conversations/turns/{turn_id}",
               summary="Delete one of the calling key's turns: it is forgotten, with a receipt")
def delete_my_turn(turn_id: str, request: Request,
                   identity: ApiKeyIdentity = Depends(require_key)) -> dict[str, Any]:
    state = get_state(request)
    return delete_turn(identity.org_slug, turn_id, actor=identity.actor, key_id=identity.key_id,
                       reason="deleted by its owner", store=state.store, url=state.db_url).as_dict()


@router.get("/api/orgs/{org}/conversations", summary="The org's conversation-recording policy")
def policy(org: str, request: Request,
           identity: ApiKeyIdentity = Depends(require_org_admin)) -> dict[str, Any]:
    with get_state(request).session() as session:
        org_row = get_org(session, org)
        return policy_dict(org_row, get_policy(session, org_row))


@router.put("/api/orgs/{org}/conversations", summary="Enable or disable recording conversations (audited)")
def set_policy(org: str, body: PolicyUpdate, request: Request,
               identity: ApiKeyIdentity = Depends(require_org_admin)) -> dict[str, Any]:
    with get_state(request).session(write=True) as session:
        org_row = get_org(session, org)
        if not body.enabled:
            return policy_dict(org_row, disable(session, org_row, actor=identity.actor))
        current = get_policy(session, org_row)
        days = body.retention_days or (current.retention_days if current else DEFAULT_RETENTION_DAYS)
        row = enable(session, org_row, retention_days=days, redact_pii=body.redact_pii, actor=identity.actor)
        return policy_dict(org_row, row)


@router.get("/api/orgs/{org}/conversations/turns", summary="Every recorded turn of the org (or one key's)")
def org_turns(org: str, request: Request, identity: ApiKeyIdentity = Depends(require_org_admin),
              key_id: int | None = Query(None, description="Only this key's turns."),
              include_forgotten: bool = Query(False, description="Also deleted turns (their text is gone)."),
              limit: int = LimitQuery, after: str | None = AfterQuery) -> dict[str, Any]:
    with get_state(request).session() as session:
        page = list_turns(session, get_org(session, org), key_id=key_id, limit=limit, after=after,
                          include_forgotten=include_forgotten)
        return _page(page.turns, page.has_more, admin=True)


@router.delete("/api/orgs/{org}/conversations/turns/{turn_id}",
               summary="Delete any turn of the org: it is forgotten, with a receipt")
def delete_org_turn(org: str, turn_id: str, request: Request,
                    identity: ApiKeyIdentity = Depends(require_org_admin),
                    reason: str | None = Query(None, description="Recorded on the receipt."),
                    ) -> dict[str, Any]:
    state = get_state(request)
    return delete_turn(org, turn_id, actor=identity.actor, reason=reason, store=state.store,
                       url=state.db_url).as_dict()


@router.post("/api/orgs/{org}/conversations/prune",
             summary="Delete now every turn past the org's retention (each forgotten, with a receipt)")
def prune_now(org: str, request: Request,
              identity: ApiKeyIdentity = Depends(require_org_admin)) -> dict[str, Any]:
    state = get_state(request)
    return prune(org, actor=identity.actor, store=state.store, url=state.db_url).as_dict()
