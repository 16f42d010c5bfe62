"""The console's review queue and the chat's feedback: the same ``orgmem.ops.feedback`` functions
as ``/api`` and ``/v1/feedback``.

``GET /console/orgs/{org}/corrections``: each correction with its question, the model's answer,
the proposed one, who proposed it and the live documents that currently say otherwise, with
approve / reject forms (CSRF token, as every console form). ``POST .../feedback``: the chat's
thumbs and "correct it", JSON with the CSRF header, like the chat itself; the reply is the
logged-in admin key's, so it may rate and correct it.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse, Response

from orgmem.api.admin_routes import org_dict
from orgmem.api.auth import get_state
from orgmem.api.errors import public_error
from orgmem.console import security
from orgmem.console.render import ConsoleRoute, redirect, render
from orgmem.console.security import ConsoleUser
from orgmem.db.enums import CorrectionStatus
from orgmem.errors import ApiError, OrgmemError
from orgmem.keys import ApiKeyIdentity
from orgmem.lineage import get_org
from orgmem.lineage.audiences import ORG_AUDIENCE
from orgmem.ops import feedback

logger = logging.getLogger(__name__)

router = APIRouter(prefix=security.PATH, route_class=ConsoleRoute, include_in_schema=False)

STATUSES = [s.value for s in CorrectionStatus]


def _reach(user: ConsoleUser) -> tuple[str, ...]:
    return (ORG_AUDIENCE, *user.groups)


@router.get("/orgs/{org}/corrections")
def corrections(org: str, request: Request, status: str | None = "pending",
                identity: ConsoleUser = Depends(security.console_org_reader)) -> Response:
    """The review queue (``?status=`` pending by default; ``all`` for every one)."""
    shown = None if status in (None, "", "all") else status
    with get_state(request).session() as session:
        data = {"org": org_dict(get_org(session, org)),
                "corrections": feedback.listing(session, org, status=shown, audiences=_reach(identity)),
                "counts": feedback.counts(session, org)}
    return render(request, "corrections.html", {"tab": "corrections", "status": shown or "all",
                                                "statuses": STATUSES, **data})


@router.post("/orgs/{org}/corrections/{correction_id}/{decision}")
async def review(org: str, correction_id: str, decision: str, request: Request,
                 identity: ApiKeyIdentity = Depends(security.console_org_admin)) -> Response:
    form = await security.checked_form(request)
    if decision not in ("approve", "reject"):
        raise ApiError(404, f"unknown review decision {decision!r}; approve or reject", "not_found_error",
                       "not_found")
    reason = form.get("reason", "").strip() or None
    try:
        with get_state(request).session(write=True) as session:
            out = feedback.review_correction(session, org, correction_id, approve=decision == "approve",
                                             actor=identity.actor, reason=reason, audiences=_reach(identity))
        then = "the next consolidation learns it" if out["status"] == "approved" else "it never trains"
        flash = ("ok", f"{out['status']} correction {out['id']}: {then}")
    except OrgmemError as exc:  # decided already, not found: say why, change nothing
        flash = ("error", f"review failed: {public_error(request, exc)}")
    logger.info("console review", extra={"org": org, "correction": correction_id, "outcome": flash[0]})
    return redirect(request, f"{security.PATH}/orgs/{quote(org)}/corrections", flash)


@router.post("/orgs/{org}/feedback")
async def chat_feedback(org: str, request: Request,
                        identity: ApiKeyIdentity = Depends(security.console_org_admin)) -> Response:
    """Thumbs up / down or a correction of one chat reply (JSON in and out)."""
    security.check_csrf(request, request.headers.get(security.CSRF_HEADER))
    try:
        payload = json.loads(await request.body() or b"{}")
        if not isinstance(payload, dict) or not isinstance(payload.get("response_id"), str):
            raise ApiError(400, "send {response_id, rating?, correction?}", param="response_id")
        rating, correction = payload.get("rating"), payload.get("correction")
        if rating not in (None, "up", "down") or not isinstance(correction, str | None):
            raise ApiError(400, "rating is 'up' or 'down'; correction is text", param="rating")
        with get_state(request).session(write=True) as session:
            out = feedback.submit_feedback(session, identity, payload["response_id"], rating=rating,
                                           correction=correction or None)
    except json.JSONDecodeError as exc:
        return JSONResponse(ApiError(400, f"the feedback is not JSON: {exc}").body(), status_code=400)
    except Exception as exc:
        err = public_error(request, exc)
        return JSONResponse(err.body(), status_code=err.status, headers=err.headers)
    return JSONResponse(out)
