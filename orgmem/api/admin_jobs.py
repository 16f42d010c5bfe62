"""``/api``: sources, background jobs (sync, consolidate) and schedules of an org.

These call the same functions as ``orgmem source|sync|consolidate|jobs|job|schedule``
(``orgmem.ingest``, ``orgmem.ops.jobs``, ``orgmem.jobs``, ``orgmem.ops.schedules``). Jobs leave
through the process's job queue (``orgmem.jobs.queue``), which the app installs.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from orgmem import ingest, jobs
from orgmem.api.auth import get_state, require_org_admin
from orgmem.errors import ApiError, NotFoundError, OrgmemError, permission_denied
from orgmem.keys import ApiKeyIdentity
from orgmem.lineage import get_org
from orgmem.lineage.audiences import ORG_AUDIENCE, validate_audience
from orgmem.ops import jobs as job_ops
from orgmem.ops import schedules

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/orgs/{org}", tags=["admin: data and jobs"])


class SourceCreate(BaseModel):
    kind: str = Field(..., description="Connector kind: git, docs, slack, rss...")
    name: str
    config: dict[str, Any] = Field(default_factory=dict)
    audience: str = "org"


class SyncRequest(BaseModel):
    source: str | None = Field(None, description="Only this source (default: every enabled source).")
    then_consolidate: bool = False


class ConsolidateRequest(BaseModel):
    params: dict[str, Any] = Field(default_factory=dict)
    audience: str | None = Field(None, description="'org' (default) or a group: train that group's memory.")


class ScheduleSet(BaseModel):
    cron: str = Field(..., description="Five-field cron, e.g. '0 2 * * *'.")
    timezone: str = Field("UTC", description="IANA zone, e.g. 'Europe/Oslo' (DST handled by the zone).")


def source_dict(source, stats: dict[str, int] | None = None) -> dict[str, Any]:
    out = {"name": source.name, "kind": source.kind, "audience": source.audience, "enabled": source.enabled,
           "config": source.config, "cursor": source.cursor}
    return {**out, "stats": stats} if stats is not None else out


# -- sources -------------------------------------------------------------------------------------

@router.get("/sources", summary="The org's data sources")
def sources_list(org: str, request: Request, identity: ApiKeyIdentity = Depends(require_org_admin)):
    with get_state(request).session() as session:
        org_row = get_org(session, org)
        sources = ingest.list_sources(session, org_row)
        return [source_dict(s, ingest.source_stats(session, s)) for s in sources]


@router.post("/sources", status_code=201, summary="Register a source (config validated by its connector)")
def sources_add(org: str, body: SourceCreate, request: Request,
                identity: ApiKeyIdentity = Depends(require_org_admin)) -> dict[str, Any]:
    with get_state(request).session(write=True) as session:
        source = ingest.add_source(session, get_org(session, org), body.kind, body.name, body.config,
                                   audience=body.audience, actor=identity.actor, admin=True,
                                   settings=get_state(request).settings)
        return source_dict(source)


@router.post("/sources/{name}/test", summary="Check that a source can sync (path, repository, zip, feed)")
def sources_test(org: str, name: str, request: Request,
                 identity: ApiKeyIdentity = Depends(require_org_admin)) -> dict[str, Any]:
    """The add-time check again, as the sync sees it (the operator's confinement, which the source met
    when it was added); ``ok: false`` carries the error the next sync would record."""
    with get_state(request).session() as session:
        org_row = get_org(session, org)
        ingest.get_source(session, org_row, name)  # unknown: 404
        try:
            ingest.check_registered(session, org_row, name, settings=get_state(request).settings)
        except OrgmemError as exc:
            return {"source": name, "ok": False, "error": str(exc)}
    return {"source": name, "ok": True, "error": None}


@router.delete("/sources/{name}", summary="Remove a source (or disable it if checkpoints used it)")
def sources_remove(org: str, name: str, request: Request, disable_if_used: bool = Query(False),
                   identity: ApiKeyIdentity = Depends(require_org_admin)) -> dict[str, Any]:
    with get_state(request).session(write=True) as session:
        outcome = ingest.remove_source(session, get_org(session, org), name, disable_if_used=disable_if_used,
                                       actor=identity.actor)
    return {"source": name, "outcome": outcome}


# -- jobs ----------------------------------------------------------------------------------------

@router.post("/sync", status_code=202, summary="Queue a sync of the org's sources")
def sync(org: str, request: Request, body: SyncRequest | None = None,
         identity: ApiKeyIdentity = Depends(require_org_admin)) -> dict[str, Any]:
    body = body or SyncRequest()
    job_id = job_ops.submit_sync(org, actor=identity.actor, source=body.source,
                                 then_consolidate=body.then_consolidate)
    return {"job_id": job_id, "status": "queued"}


@router.post("/consolidate", status_code=202, summary="Queue a consolidation of pending material")
def consolidate(org: str, request: Request, body: ConsolidateRequest | None = None,
                identity: ApiKeyIdentity = Depends(require_org_admin)) -> dict[str, Any]:
    body = body or ConsolidateRequest()
    params = dict(body.params)
    audience = body.audience or params.get("audience") or ORG_AUDIENCE
    try:
        validate_audience(str(audience))
    except OrgmemError as exc:
        raise ApiError(400, str(exc), param="audience") from None
    if audience != ORG_AUDIENCE:
        if audience not in identity.groups:
            raise permission_denied(f"API key {identity.prefix}… does not carry group {audience!r}")
        params["audience"] = audience
    else:
        params.pop("audience", None)
    job_id = job_ops.submit_consolidation(org, actor=identity.actor, params=params)
    return {"job_id": job_id, "status": "queued"}


@router.get("/jobs", summary="The org's jobs, newest first")
def jobs_list(org: str, request: Request, identity: ApiKeyIdentity = Depends(require_org_admin),
              kind: str | None = None, status: str | None = None, limit: int = Query(50, ge=1, le=500)):
    with get_state(request).session() as session:
        rows = jobs.list_jobs(session, get_org(session, org), kind=kind, status=status, limit=limit)
        return [jobs.job_dict(session, job) for job in rows]


def _own_job(session, org: str, job_id: str):
    """A job of ``org``; another org's job is "not found", word for word like one that does not exist."""
    org_id = get_org(session, org).id
    try:
        job = jobs.get_job(session, job_id)
    except NotFoundError:
        job = None
    if job is None or job.org_id != org_id:
        raise NotFoundError(f"job {job_id!r} not found (org {org!r}; see `orgmem jobs {org}`)")
    return job


@router.get("/jobs/{job_id}", summary="One job with its events")
def job_show(org: str, job_id: str, request: Request,
             identity: ApiKeyIdentity = Depends(require_org_admin)) -> dict[str, Any]:
    with get_state(request).session() as session:
        return jobs.job_dict(session, _own_job(session, org, job_id), events=True)


@router.post("/jobs/{job_id}/cancel", summary="Cancel a queued job or stop a running one")
def job_cancel(org: str, job_id: str, request: Request,
               identity: ApiKeyIdentity = Depends(require_org_admin)) -> dict[str, Any]:
    with get_state(request).session() as session:
        _own_job(session, org, job_id)
    with get_state(request).session(write=True) as session:
        return job_ops.cancel(session, job_id, actor=identity.actor).job


# -- schedule ------------------------------------------------------------------------------------

@router.get("/schedule", summary="When the nightly loop runs")
def schedule_show(org: str, identity: ApiKeyIdentity = Depends(require_org_admin)) -> dict[str, Any]:
    return schedules.get_schedule(org).as_dict()


@router.put("/schedule", summary="Run sync + consolidate at this cron time in this zone")
def schedule_set(org: str, body: ScheduleSet, identity: ApiKeyIdentity = Depends(require_org_admin)):
    return schedules.set_schedule(org, body.cron, body.timezone, actor=identity.actor).as_dict()


@router.delete("/schedule", summary="Turn the schedule off (kept, disabled)")
def schedule_off(org: str, identity: ApiKeyIdentity = Depends(require_org_admin)) -> dict[str, Any]:
    return schedules.disable_schedule(org, actor=identity.actor).as_dict()
