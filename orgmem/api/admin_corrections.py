"""``/api/orgs/{org}/corrections`` and ``/feedback``: the review queue and feedback counts (admin keys).

The HTTP face of ``orgmem corrections ...``. A correction of a group the key does not carry, and
another org's, are a 404 like a missing one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from orgmem.api.auth import get_state, require_org_admin
from orgmem.keys import ApiKeyIdentity
from orgmem.lineage.audiences import ORG_AUDIENCE
from orgmem.ops import feedback

router = APIRouter(prefix="/api/orgs/{org}", tags=["admin: feedback and corrections"])


class Review(BaseModel):
    reason: str | None = Field(None, max_length=2000)


class Policy(BaseModel):
    auto_approve_role: str | None = Field(None, description="'admin', 'employee' or null (review all).")


def _reach(identity: ApiKeyIdentity) -> tuple[str, ...]:
    return (ORG_AUDIENCE, *identity.groups)


@router.get("/corrections", summary="The org's corrections, newest first")
def corrections(org: str, request: Request, identity: ApiKeyIdentity = Depends(require_org_admin),
                status: str | None = Query(None, description="pending | approved | rejected | consumed")
                ) -> list[dict[str, Any]]:
    with get_state(request).session() as session:
        return feedback.listing(session, org, status=status, audiences=_reach(identity))


@router.get("/corrections/{correction_id}", summary="One correction, with the documents it contradicts")
def correction(org: str, correction_id: str, request: Request,
               identity: ApiKeyIdentity = Depends(require_org_admin)) -> dict[str, Any]:
    with get_state(request).session() as session:
        return feedback.show(session, org, correction_id, _reach(identity))


def _review(request: Request, identity: ApiKeyIdentity, org: str, correction_id: str, approve: bool,
            body: Review | None) -> dict[str, Any]:
    with get_state(request).session(write=True) as session:
        return feedback.review_correction(session, org, correction_id, approve=approve, actor=identity.actor,
                                          reason=body.reason if body else None, audiences=_reach(identity))


@router.post("/corrections/{correction_id}/approve", summary="Approve: the next consolidation learns it")
def approve(org: str, correction_id: str, request: Request, body: Review | None = None,
            identity: ApiKeyIdentity = Depends(require_org_admin)) -> dict[str, Any]:
    return _review(request, identity, org, correction_id, True, body)


@router.post("/corrections/{correction_id}/reject", summary="Reject: it never trains the memory")
def reject(org: str, correction_id: str, request: Request, body: Review | None = None,
           identity: ApiKeyIdentity = Depends(require_org_admin)) -> dict[str, Any]:
    return _review(request, identity, org, correction_id, False, body)


@router.get("/feedback", summary="Ratings and corrections counted, and the review policy")
def counts(org: str, request: Request, identity: ApiKeyIdentity = Depends(require_org_admin)
           ) -> dict[str, Any]:
    with get_state(request).session() as session:
        return feedback.counts(session, org)


@router.put("/feedback/policy", summary="Auto-approve corrections from keys of one role (or none)")
def policy(org: str, body: Policy, request: Request,
           identity: ApiKeyIdentity = Depends(require_org_admin)) -> dict[str, Any]:
    with get_state(request).session(write=True) as session:
        return feedback.set_policy(session, org, body.auto_approve_role, actor=identity.actor)
