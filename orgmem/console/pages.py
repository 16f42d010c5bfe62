"""The console's pages (GET): login, orgs, and per org its overview, checkpoints, history, audit,
receipts and chat.

Every page except the login form needs the key cookie (``security.console_key``); pages of an org
need an admin key of that org, the same rule as ``/api/orgs/{org}``, or the operator key, which
reads every org's pages but gets no chat and no action (``security.console_org_admin``). A group's
lineage (``?audience=GROUP``) is shown only to keys carrying the group; to any other it does not
exist, as on ``/api``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from orgmem.api.admin_routes import org_dict
from orgmem.api.auth import get_state
from orgmem.console import accountability, security, views
from orgmem.console.actions import ACTIONS, describe
from orgmem.console.render import ConsoleRoute, redirect, render
from orgmem.console.security import ConsoleUser, OperatorIdentity
from orgmem.db.models import Org
from orgmem.errors import ApiError
from orgmem.keys import ApiKeyIdentity
from orgmem.lineage import get_org, list_orgs
from orgmem.lineage.audiences import ORG_AUDIENCE

router = APIRouter(prefix=security.PATH, route_class=ConsoleRoute, include_in_schema=False)


@router.get("")
@router.get("/")
def home(request: Request) -> Response:
    if not request.cookies.get(security.KEY_COOKIE):
        return redirect(request, f"{security.PATH}/login")
    return redirect(request, f"{security.PATH}/orgs")


@router.get("/login")
def login_form(request: Request) -> Response:
    return render(request, "login.html")


def _audiences(user: ConsoleUser) -> tuple[str, ...]:
    """The audiences whose material the user may see: the org's, and the key's groups."""
    return (ORG_AUDIENCE, *user.groups)


def _lineage_tabs(user: ConsoleUser, audience: str) -> dict[str, object]:
    """The lineage selector: the org's and each group the key carries."""
    return {"audiences": list(_audiences(user)), "audience": audience}


@router.get("/orgs")
def orgs(request: Request, identity: ConsoleUser = Depends(security.console_key)) -> Response:
    """The orgs this login may see: every org for the operator, the key's own for an admin key."""
    with get_state(request).session() as session:
        rows = list_orgs(session) if isinstance(identity, OperatorIdentity) \
            else [get_org(session, identity.org_slug)]
        data = views.org_summaries(session, rows, _audiences(identity))
    return render(request, "orgs.html", {"orgs": data})


@router.get("/orgs/{org}")
def org_overview(org: str, request: Request,
                 identity: ConsoleUser = Depends(security.console_org_reader)) -> Response:
    with get_state(request).session() as session:
        data = views.overview(session, get_org(session, org), tuple(identity.groups))
    return render(request, "org.html", {"tab": "overview", **data})


@router.get("/orgs/{org}/jobs")
def org_jobs(org: str, request: Request,
             identity: ConsoleUser = Depends(security.console_org_reader)) -> Response:
    """The jobs table alone: the overview page re-fetches it every few seconds."""
    with get_state(request).session() as session:
        rows = views.jobs(session, get_org(session, org))
    return render(request, "_jobs.html", {"jobs": rows, "org": {"slug": org}})


def _lineage_page(request: Request, identity: ConsoleUser, org: str, audience: str | None, tab: str,
                  build: Callable[[Session, Org, str], dict[str, Any]]) -> Response:
    """A tab about one lineage (the org's, or ``?audience=GROUP`` for a group of the key): the org,
    what ``build`` reads of that lineage, and the lineage tabs; the template is named after the tab."""
    audience = security.reachable_audience(identity, audience)
    with get_state(request).session() as session:
        org_row = get_org(session, org)
        data = {"org": org_dict(org_row), **build(session, org_row, audience)}
    return render(request, f"{tab}.html", {"tab": tab, **_lineage_tabs(identity, audience), **data})


@router.get("/orgs/{org}/checkpoints")
def org_checkpoints(org: str, request: Request, audience: str | None = None,
                    identity: ConsoleUser = Depends(security.console_org_reader)) -> Response:
    """One lineage's tree and charts: the org's, or ``?audience=GROUP`` for a group of the key."""
    return _lineage_page(request, identity, org, audience, "checkpoints", lambda session, org_row, audience: {
        "tree": views.tree(session, org_row, audience),
        "lineage": views.lineage(session, org_row, audience),
        "charts": views.charts(session, org_row, audience),
    })


@router.get("/orgs/{org}/history")
def org_history(org: str, request: Request, audience: str | None = None,
                identity: ConsoleUser = Depends(security.console_org_reader)) -> Response:
    return _lineage_page(request, identity, org, audience, "history", lambda session, org_row, audience: {
        "events": views.history(session, org_row, audience),
    })


@router.get("/orgs/{org}/audit")
def org_audit(org: str, request: Request, action: str | None = None, since: str | None = None,
              identity: ConsoleUser = Depends(security.console_org_reader)) -> Response:
    """``orgmem audit ORG [--action FAMILY] [--since 1d]``; a filter it cannot read is a 400 saying why."""
    with get_state(request).session() as session:
        org_row = get_org(session, org)
        page = accountability.audit(session, org_row, action=action, since=since)
        data = {"org": org_dict(org_row), "audit": page}
    return render(request, "audit.html", {"tab": "audit", **data}, status=400 if page.error else 200)


@router.get("/orgs/{org}/receipts")
def org_receipts(org: str, request: Request,
                 identity: ConsoleUser = Depends(security.console_org_reader)) -> Response:
    with get_state(request).session() as session:
        org_row = get_org(session, org)
        data = {"org": org_dict(org_row), "receipts": accountability.receipts(session, org_row)}
    return render(request, "receipts.html", {"tab": "receipts", **data})


@router.get("/orgs/{org}/receipts/{receipt_id}")
def org_receipt(org: str, receipt_id: str, request: Request,
                identity: ConsoleUser = Depends(security.console_org_reader)) -> Response:
    with get_state(request).session() as session:
        org_row = get_org(session, org)
        data = {"org": org_dict(org_row), "receipt": accountability.receipt(session, org_row, receipt_id)}
    return render(request, "receipt.html", {"tab": "receipts", **data})


@router.get("/orgs/{org}/chat")
def org_chat(org: str, request: Request, model: str | None = None,
             identity: ApiKeyIdentity = Depends(security.console_org_admin)) -> Response:
    with get_state(request).session() as session:
        org_row = get_org(session, org)
        data = {"org": org_dict(org_row), "models": views.models(session, org_row, tuple(identity.groups))}
    return render(request, "chat.html", {"tab": "chat", "selected": model or org, **data})


@router.get("/orgs/{org}/confirm/{action}")
def confirm(org: str, action: str, request: Request, checkpoint: str | None = None,
            document: str | None = None, audience: str | None = None,
            identity: ApiKeyIdentity = Depends(security.console_org_admin)) -> Response:
    """The confirmation step of every action: what will happen, a reason field, and the POST form."""
    if action not in ACTIONS:
        raise ApiError(404, f"unknown console action {action!r}; one of {sorted(ACTIONS)}",
                       "not_found_error", "not_found")
    audience = security.reachable_audience(identity, audience)
    with get_state(request).session() as session:
        org_row = get_org(session, org)
        spec = ACTIONS[action]
        plan = describe(session, org_row, action, checkpoint=checkpoint, document=document,
                        audience=audience, groups=tuple(identity.groups))
        data = {"org": org_dict(org_row), "action": action, "spec": spec, "summary": plan.summary,
                "audience": plan.audience, "checkpoint": checkpoint or "", "document": document or ""}
    return render(request, "confirm.html", data)
