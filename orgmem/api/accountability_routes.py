"""``/api/orgs/{org}``: forget a document, its receipts, and the org's audit trail (admin keys only).

The HTTP face of ``orgmem forget``, ``orgmem receipts list|show`` and ``orgmem audit``,
with the key's identity as the recorded actor. Another org's receipt is a 404 naming only the
caller's own org, so ids of other orgs cannot be probed.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from orgmem.api.auth import get_state, require_org_admin
from orgmem.keys import ApiKeyIdentity
from orgmem.lineage import get_org
from orgmem.lineage.audit import audit_dict, list_audit, parse_since
from orgmem.lineage.receipts import get_receipt, list_receipts, receipt_dict
from orgmem.ops.forget import forget as forget_document

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/orgs/{org}", tags=["admin: forgetting and audit"])


class ForgetRequest(BaseModel):
    document: str = Field(..., description="Document id, path / external id, or URI.")
    reason: str | None = None
    replay: bool = Field(True, description="Queue a consolidation of the remaining material.")


@router.post("/forget", summary="Forget a document: roll back, quarantine, delete objects, receipt")
def forget(org: str, body: ForgetRequest, request: Request,
           identity: ApiKeyIdentity = Depends(require_org_admin)) -> dict[str, Any]:
    state = get_state(request)
    done = forget_document(org, body.document, actor=identity.actor, reason=body.reason, replay=body.replay,
                           store=state.store, url=state.db_url)
    return {**done.receipt, "replay_note": done.replay_note} if done.replay_note else done.receipt


@router.get("/receipts", summary="The org's forget receipts, newest first")
def receipts(org: str, request: Request,
             identity: ApiKeyIdentity = Depends(require_org_admin)) -> list[dict[str, Any]]:
    with get_state(request).session() as session:
        return [receipt_dict(r, org) for r in list_receipts(session, get_org(session, org))]


@router.get("/receipts/{receipt_id}", summary="One forget receipt")
def receipt(org: str, receipt_id: str, request: Request,
            identity: ApiKeyIdentity = Depends(require_org_admin)) -> dict[str, Any]:
    with get_state(request).session() as session:
        return receipt_dict(get_receipt(session, receipt_id, get_org(session, org)), org)


@router.get("/audit", summary="The org's audit trail: actor, time, action, target, details")
def audit(org: str, request: Request, identity: ApiKeyIdentity = Depends(require_org_admin),
          since: str | None = Query(None, description="ISO time, or a duration back from now: 2h, 1d."),
          action: str | None = Query(None, description="An action (serving.pin) or family (serving)."),
          limit: int | None = Query(None, ge=1, le=10000, description="Only the newest N events.")
          ) -> list[dict[str, Any]]:
    start = parse_since(since) if since else None
    with get_state(request).session() as session:
        org_id = get_org(session, org).id
        return [audit_dict(e) for e in list_audit(session, org_id, since=start, action=action, limit=limit)]
