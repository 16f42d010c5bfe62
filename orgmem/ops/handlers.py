"""What each job kind does once a worker claimed it: ``dispatch(ctx)`` picks the handler by kind.

Handlers return the JSON result stored on the job and raise to fail it (``orgmem.jobs.runner``
decides between retry and failure). Heavy imports (torch, connectors) happen inside the
handlers, in the process that runs the job, not when a queue or the CLI is loaded. ``SyncHere``
is ``orgmem sync --inline``'s handler: the whole org in one go, any source error fails the job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from orgmem.db.models import Org, Source
from orgmem.db.session import get_row, session_scope
from orgmem.errors import NotFoundError, OrgmemError
from orgmem.jobs import JobContext, JobFailed

if TYPE_CHECKING:
    from orgmem.ingest.report import SyncReport

logger = logging.getLogger(__name__)


def _org_slug(ctx: JobContext) -> str:
    with session_scope() as session:
        org = session.get(Org, ctx.org_id) if ctx.org_id is not None else None
        if org is None:
            raise NotFoundError(f"job {ctx.job_id!r} names org id {ctx.org_id!r}, which no longer exists")
        return org.slug


def _source_names(org_slug: str, only: str | None) -> list[str]:
    from orgmem.ingest import get_source, list_sources
    from orgmem.lineage import get_org

    with session_scope() as session:
        org = get_org(session, org_slug)
        if only:
            return [get_source(session, org, only).name]
        return [s.name for s in list_sources(session, org) if s.enabled]


def run_sync(ctx: JobContext) -> dict[str, Any]:
    """Sync the org's enabled sources one by one; fails only if every source failed."""
    from orgmem.ingest import get_source, sync_source
    from orgmem.lineage import get_org

    slug = _org_slug(ctx)
    pruned = _prune_conversations(ctx, slug)
    names = _source_names(slug, ctx.params.get("source"))
    reports = []
    for i, name in enumerate(names):
        ctx.progress(i / max(1, len(names)), f"syncing source {name} ({i + 1}/{len(names)})")
        with session_scope(write=True) as session:
            source: Source = get_source(session, get_org(session, slug), name)
            report = sync_source(session, source, job_id=ctx.job_id, progress=False)
        ctx.event(report.summary(), level="error" if report.error else "info", data=report.to_dict())
        reports.append(report)
    failed = [r.source for r in reports if r.error]
    if reports and len(failed) == len(reports):
        raise OrgmemError(f"org {slug!r}: every source failed to sync ({', '.join(failed)}); see job events")
    result = {
        "org": slug,
        "sources": [r.to_dict() for r in reports],
        "chunks_added": sum(r.chunks_added for r in reports),
        "failed_sources": failed,
    }
    return {**result, "conversations_pruned": pruned} if pruned else result


def _prune_conversations(ctx: JobContext, slug: str) -> dict[str, Any] | None:
    """Each sync (the nightly one first) deletes recorded turns past the org's retention, before the
    night's consolidation could train on them; no replay is queued, that consolidation follows.
    Best effort: a failure is an event on the job, and the next sync tries again."""
    from orgmem.ingest.conversations.forget import prune_expired

    try:
        with session_scope(write=True) as session:
            pruned = prune_expired(session, slug, actor="retention")
    except Exception as exc:
        logger.exception("conversation retention failed", extra={"org": slug, "job": ctx.job_id})
        ctx.event(f"conversation retention failed: {type(exc).__name__}: {exc}", level="error")
        return {"error": f"{type(exc).__name__}: {exc}"}
    if not (pruned.receipts or pruned.refused):
        return None
    ctx.event(f"conversation retention: {len(pruned.receipts)} turn(s) deleted", data=pruned.as_dict())
    return pruned.as_dict()


def run_consolidation(ctx: JobContext) -> dict[str, Any]:
    """Consolidate the org's pending chunks, evaluate, commit, gate (``orgmem.pipeline``)."""
    from orgmem.pipeline import consolidate_org

    result = consolidate_org(_org_slug(ctx), ctx=ctx).to_dict()
    purged = _purge_forgotten()
    return {**result, "purged_receipts": purged} if purged else result


def _purge_forgotten() -> list[str]:
    """Each night also deletes forgotten checkpoints' objects whose grace has passed (best effort:
    ``orgmem store gc`` does the same on demand)."""
    from orgmem.pipeline.purge import purge_due
    from orgmem.store import open_store

    try:
        with session_scope() as session:
            return [r.id for r in purge_due(session, open_store()) if r.deletion_status == "done"]
    except Exception:
        logger.exception("purging forgotten checkpoint objects failed")
        return []


class SyncHere:
    """Handler of an inline sync; keeps the reports (and the exception, raised again by the caller)."""

    def __init__(self, source: str | None, *, progress: bool = True,
                 count_tokens: Callable[[str], int] | None = None) -> None:
        self.source, self.progress, self.count_tokens = source, progress, count_tokens
        self.reports: list[SyncReport] = []
        self.error: BaseException | None = None

    def __call__(self, ctx: JobContext) -> dict[str, Any]:
        from orgmem.ingest import sync_org

        try:
            with session_scope(write=True) as session:
                org = get_row(session, Org, ctx.org_id)
                self.reports = sync_org(session, org, source_name=self.source, job_id=ctx.job_id,
                                        progress=self.progress, count_tokens=self.count_tokens)
        except Exception as exc:
            self.error = exc
            raise JobFailed(f"{type(exc).__name__}: {exc}", cause=exc) from exc
        result = {"sources": [r.to_dict() for r in self.reports]}
        errors = [f"{r.source}: {r.error}" for r in self.reports if r.error]
        if errors:
            raise JobFailed("; ".join(errors), details=result)
        return result


HANDLERS: dict[str, Callable[[JobContext], dict[str, Any]]] = {
    "sync": run_sync,
    "consolidate": run_consolidation,
}


def dispatch(ctx: JobContext) -> dict[str, Any]:
    handler = HANDLERS.get(ctx.kind)
    if handler is None:
        raise OrgmemError(f"job {ctx.job_id!r} has kind {ctx.kind!r}; workers run {sorted(HANDLERS)}")
    return handler(ctx)
