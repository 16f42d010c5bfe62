"""The console's pages (GET): login, orgs, and per org its overview, checkpoints, history and chat.

Every page except the login form needs the admin key cookie (``security.console_key``); pages of
an org need an admin key of that org, the same rule as ``/api/orgs/{org}``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from orgmem.console import security, views
from orgmem.console.actions import ACTIONS, describe
from orgmem.console.render import ConsoleRoute, redirect, render
from orgmem.keys import ApiKeyIdentity
from orgmem.lineage import get_org
from orgmem.serving.admin_routes import org_dict
from orgmem.serving.auth import get_state
from orgmem.serving.errors import ApiError

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


@router.get("/orgs")
def orgs(request: Request, identity: ApiKeyIdentity = Depends(security.console_key)) -> Response:
    """The orgs this key may see: its own (keys are org-scoped)."""
    with get_state(request).session() as session:
        rows = [org_dict(get_org(session, identity.org_slug))]
    return render(request, "orgs.html", {"orgs": rows})


@router.get("/orgs/{org}")
def org_overview(org: str, request: Request,
                 identity: ApiKeyIdentity = Depends(security.console_org_admin)) -> Response:
    with get_state(request).session() as session:
        data = views.overview(session, get_org(session, org), tuple(identity.groups))
    return render(request, "org.html", {"tab": "overview", **data})


@router.get("/orgs/{org}/jobs")
def org_jobs(org: str, request: Request,
             identity: ApiKeyIdentity = Depends(security.console_org_admin)) -> Response:
    """The jobs table alone: the overview page re-fetches it every few seconds."""
    with get_state(request).session() as session:
        rows = views.jobs(session, get_org(session, org))
    return render(request, "_jobs.html", {"jobs": rows, "org": {"slug": org}})


@router.get("/orgs/{org}/checkpoints")
def org_checkpoints(org: str, request: Request,
                    identity: ApiKeyIdentity = Depends(security.console_org_admin)) -> Response:
    with get_state(request).session() as session:
        org_row = get_org(session, org)
        data = {"org": org_dict(org_row), "tree": views.tree(session, org_row),
                "charts": views.charts(session, org_row)}
    return render(request, "checkpoints.html", {"tab": "checkpoints", **data})


@router.get("/orgs/{org}/history")
def org_history(org: str, request: Request,
                identity: ApiKeyIdentity = Depends(security.console_org_admin)) -> Response:
    with get_state(request).session() as session:
        org_row = get_org(session, org)
        data = {"org": org_dict(org_row), "events": views.history(session, org_row)}
    return render(request, "history.html", {"tab": "history", **data})


@router.get("/orgs/{org}/chat")
def org_chat(org: str, request: Request, model: str | None = None,
             identity: ApiKeyIdentity = Depends(security.console_org_admin)) -> Response:
    with get_state(request).session() as session:
        org_row = get_org(session, org)
        data = {"org": org_dict(org_row), "models": views.models(session, org_row)}
    return render(request, "chat.html", {"tab": "chat", "selected": model or org, **data})


@router.get("/orgs/{org}/confirm/{action}")
def confirm(org: str, action: str, request: Request, checkpoint: str | None = None,
            document: str | None = None,
            identity: ApiKeyIdentity = Depends(security.console_org_admin)) -> Response:
    """The confirmation step of every action: what will happen, a reason field, and the POST form."""
    if action not in ACTIONS:
        raise ApiError(404, f"unknown console action {action!r}; one of {sorted(ACTIONS)}",
                       "not_found_error", "not_found")
    with get_state(request).session() as session:
        org_row = get_org(session, org)
        spec = ACTIONS[action]
        summary = describe(session, org_row, action, checkpoint=checkpoint, document=document)
        data = {"org": org_dict(org_row), "action": action, "spec": spec, "summary": summary,
                "checkpoint": checkpoint or "", "document": document or ""}
    return render(request, "confirm.html", data)
