"""``/api``: the admin REST API for orgs, checkpoints, serving state, history and keys.

Each route is the HTTP face of a function the CLI also uses (``orgmem.lineage``, ``orgmem.ops``,
``orgmem.keys``), with the key's identity as the recorded actor. Every ``/api/orgs/{org}`` route
needs an admin key of that org. Changes of what an org serves also warm the new checkpoint's
memory in the background, so the first request after a pin does not pay for the load.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from pydantic import BaseModel, Field

from orgmem.api.auth import get_state, require_key, require_operator, require_org_admin
from orgmem.api.state import ServingState
from orgmem.db.models import Checkpoint, Org
from orgmem.errors import NotFoundError, permission_denied
from orgmem.keys import ApiKeyIdentity
from orgmem.lineage import create_org, get_org, list_tree
from orgmem.lineage.audiences import ORG_AUDIENCE, head_holder
from orgmem.lineage.history import event_dict, served_at, serving_history
from orgmem.ops import keys, transitions
from orgmem.serving.resolve import own_checkpoint

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api", tags=["admin"])


class OrgCreate(BaseModel):
    slug: str = Field(..., description="2-63 characters a-z, 0-9 and '-'.")
    name: str | None = None


class CheckpointAction(BaseModel):
    checkpoint_id: str
    reason: str | None = None


class Reason(BaseModel):
    reason: str | None = None


class Promote(BaseModel):
    force: bool = Field(False, description="Promote even a checkpoint the gate rejected (recorded).")
    reason: str | None = None


class KeyCreate(BaseModel):
    role: str = Field("employee", description="employee | admin")
    name: str | None = None
    groups: list[str] = Field(default_factory=list,
                              description="Groups whose memories it reaches (only the caller's groups).")


def org_dict(org: Org) -> dict[str, Any]:
    return {"slug": org.slug, "name": org.name, "created_at": org.created_at.isoformat(),
            "head_checkpoint_id": org.head_checkpoint_id, "pinned_checkpoint_id": org.pinned_checkpoint_id,
            "served_checkpoint_id": org.served_checkpoint_id}


def checkpoint_dict(ck: Checkpoint, org: Org, holder: Any = None) -> dict[str, Any]:
    """``holder``: where the checkpoint's audience keeps head and pin (the org for org checkpoints)."""
    holder = org if holder is None else holder
    return {"id": ck.id, "org": org.slug, "audience": ck.audience, "parent_id": ck.parent_id,
            "status": ck.status,
            "created_at": ck.created_at.isoformat(), "created_by": ck.created_by, "base_model": ck.base_model,
            "base_fingerprint": ck.base_fingerprint, "memory_kind": ck.memory_kind,
            "memory_config": ck.memory_config, "metrics": ck.metrics, "notes": ck.notes,
            "head": ck.id == holder.head_checkpoint_id, "pinned": ck.id == holder.pinned_checkpoint_id,
            "served": ck.id == holder.served_checkpoint_id,
            "objects": [{"name": o.name, "key": o.key, "sha256": o.sha256, "size": o.size}
                        for o in ck.objects]}


def _warm(state: ServingState, identity: ApiKeyIdentity, org: str) -> None:
    """Load the org's newly served memory now (best effort; the next request would load it anyway)."""
    try:
        state.memory_for(state.resolve(identity, org))
    except Exception as exc:
        logger.warning("could not warm served memory: %s", exc, extra={"org": org})


def warm_hook(request: Request, background: BackgroundTasks,
              identity: ApiKeyIdentity) -> transitions.Warm | None:
    """The ``orgmem.ops.transitions`` hook of this server: warm the org's memory after the response
    (None while the server is not ready: nothing is loaded to warm yet)."""
    state = get_state(request)
    if not state.ready:
        return None
    return lambda org: background.add_task(_warm, state, identity, org)


def _serving_change(request: Request, background: BackgroundTasks, identity: ApiKeyIdentity, org: str,
                    action, *args: Any, **kwargs: Any) -> dict[str, Any]:
    warm = warm_hook(request, background, identity)
    with get_state(request).session(write=True) as session:
        return action(session, org, *args, actor=identity.actor, warm=warm, **kwargs)


# -- identity and orgs ---------------------------------------------------------------------------

@router.get("/me", summary="The calling key: org and role")
def me(identity: ApiKeyIdentity = Depends(require_key)) -> dict[str, Any]:
    return {"org": identity.org_slug, "role": identity.role, "key": identity.prefix, "name": identity.name,
            "groups": list(identity.groups)}


@router.get("/orgs", summary="Orgs this key may see (its own)")
def orgs_list(request: Request, identity: ApiKeyIdentity = Depends(require_key)) -> list[dict[str, Any]]:
    with get_state(request).session() as session:
        return [org_dict(get_org(session, identity.org_slug))]


@router.post("/orgs", status_code=201, summary="Create an org (operator key only)")
def orgs_create(body: OrgCreate, request: Request, actor: str = Depends(require_operator)) -> dict[str, Any]:
    with get_state(request).session(write=True) as session:
        return org_dict(create_org(session, body.slug, body.name, actor=actor))


@router.get("/orgs/{org}", summary="One org and what it serves")
def orgs_show(org: str, request: Request, identity: ApiKeyIdentity = Depends(require_org_admin)):
    with get_state(request).session() as session:
        return org_dict(get_org(session, org))


# -- checkpoints and serving state ---------------------------------------------------------------

def _audience(identity: ApiKeyIdentity, audience: str | None) -> str:
    """The audience a route acts on; a group the key lacks is "not found", like a missing one."""
    audience = audience or ORG_AUDIENCE
    if audience != ORG_AUDIENCE and audience not in identity.groups:
        raise NotFoundError(f"org has no group {audience!r} this key may reach")
    return audience


AudienceQuery = Query(None, description="'org' (default) or one of the key's groups.")


@router.get("/orgs/{org}/checkpoints", summary="The checkpoint tree (depth-first)")
def checkpoints_tree(org: str, request: Request, identity: ApiKeyIdentity = Depends(require_org_admin),
                     audience: str | None = AudienceQuery):
    audience = _audience(identity, audience)
    with get_state(request).session() as session:
        return [node.as_dict() for node in list_tree(session, get_org(session, org), audience)]


@router.get("/orgs/{org}/checkpoints/{checkpoint_id}", summary="One checkpoint with its objects")
def checkpoint_show(org: str, checkpoint_id: str, request: Request,
                    identity: ApiKeyIdentity = Depends(require_org_admin)) -> dict[str, Any]:
    with get_state(request).session() as session:
        org_row = get_org(session, org)
        ck = own_checkpoint(session, org_row, checkpoint_id, identity.groups)
        return checkpoint_dict(ck, org_row, head_holder(session, org_row, ck.audience, create=False))


def _owned_change(request: Request, background: BackgroundTasks, identity: ApiKeyIdentity, org: str,
                  action, checkpoint_id: str, **kwargs: Any) -> dict[str, Any]:
    """A serving change aimed at one checkpoint, refused unless the key may reach that checkpoint."""
    with get_state(request).session() as session:
        own_checkpoint(session, get_org(session, org), checkpoint_id, identity.groups)
    return _serving_change(request, background, identity, org, action, checkpoint_id, **kwargs)


@router.post("/orgs/{org}/checkpoints/{checkpoint_id}/promote", summary="Promote a candidate to head")
def checkpoint_promote(org: str, checkpoint_id: str, body: Promote, request: Request,
                       background: BackgroundTasks,
                       identity: ApiKeyIdentity = Depends(require_org_admin)) -> dict[str, Any]:
    return _owned_change(request, background, identity, org, transitions.promote_checkpoint, checkpoint_id,
                         reason=body.reason, force=body.force)


def _checkpoint_action_route(path: str, summary: str, name: str, action: Callable[..., dict[str, Any]]):
    """``pin`` and ``rollback``: the same body (a checkpoint and a reason) for a different change; the
    endpoint keeps ``name``, which FastAPI takes for the route's name and operation id."""

    def endpoint(org: str, body: CheckpointAction, request: Request, background: BackgroundTasks,
                 identity: ApiKeyIdentity = Depends(require_org_admin)) -> dict[str, Any]:
        return _owned_change(request, background, identity, org, action, body.checkpoint_id,
                             reason=body.reason)

    endpoint.__name__ = endpoint.__qualname__ = name
    return router.post(path, summary=summary)(endpoint)


pin_checkpoint = _checkpoint_action_route(
    "/orgs/{org}/pin", "Serve one checkpoint until unpinned", "pin_checkpoint", transitions.pin_checkpoint)


@router.post("/orgs/{org}/unpin", summary="Serve the head again")
def unpin_org(org: str, request: Request, background: BackgroundTasks, body: Reason | None = None,
              identity: ApiKeyIdentity = Depends(require_org_admin),
              audience: str | None = AudienceQuery) -> dict[str, Any]:
    return _serving_change(request, background, identity, org, transitions.unpin_org,
                           reason=body.reason if body else None, audience=_audience(identity, audience))


rollback_org = _checkpoint_action_route(
    "/orgs/{org}/rollback", "Move the head back to an ancestor", "rollback_org", transitions.rollback_org)


@router.get("/orgs/{org}/history", summary="What the org served, by whose action")
def history(org: str, request: Request, identity: ApiKeyIdentity = Depends(require_org_admin),
            at: datetime | None = Query(None, description="ISO time: what was served then."),
            audience: str | None = AudienceQuery):
    audience = _audience(identity, audience)
    with get_state(request).session() as session:
        org_row = get_org(session, org)
        if at is not None:
            when = at if at.tzinfo else at.replace(tzinfo=UTC)
            return served_at(session, org_row, when, audience).as_dict()
        return [event_dict(e) for e in serving_history(session, org_row, audience)]


# -- keys ----------------------------------------------------------------------------------------

@router.get("/orgs/{org}/keys", summary="The org's API keys (never the keys themselves)")
def keys_list(org: str, request: Request, identity: ApiKeyIdentity = Depends(require_org_admin)):
    with get_state(request).session() as session:
        return keys.listing(session, org)


@router.post("/orgs/{org}/keys", status_code=201, summary="Create a key; the response is the only copy")
def keys_create(org: str, body: KeyCreate, request: Request,
                identity: ApiKeyIdentity = Depends(require_org_admin)) -> dict[str, Any]:
    beyond = sorted(set(body.groups) - set(identity.groups))
    if beyond:  # a key can only hand on what it may reach itself
        raise permission_denied(f"API key {identity.prefix}… does not carry group(s) {beyond}; it cannot "
                                "create a key that reaches them")
    with get_state(request).session(write=True) as session:
        return keys.create(session, org, body.role, body.name, actor=identity.actor, groups=body.groups)


@router.delete("/orgs/{org}/keys/{ref}", summary="Revoke a key (by id or prefix)")
def keys_revoke(org: str, ref: str, request: Request,
                identity: ApiKeyIdentity = Depends(require_org_admin)) -> dict[str, Any]:
    with get_state(request).session(write=True) as session:
        return keys.revoke(session, org, ref, actor=identity.actor)
