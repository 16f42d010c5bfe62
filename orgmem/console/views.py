"""What each console page shows, read from the database into plain dicts for the templates.

The same library functions as the CLI and ``/api`` (``orgmem.lineage``, ``orgmem.ingest``,
``orgmem.jobs``) do the reading; this module only arranges their results for display.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from orgmem.api.admin_routes import org_dict
from orgmem.checkpoints import MEMORY
from orgmem.checkpoints.metrics import feedback_summary
from orgmem.console.charts import LineChart, line_chart
from orgmem.db.enums import CheckpointStatus, ChunkStatus
from orgmem.db.models import Checkpoint, Chunk, Document, DocumentVersion, Org, Source
from orgmem.ingest import list_sources, source_stats
from orgmem.jobs import job_dict, list_jobs
from orgmem.lineage import event_dict, list_tree, serving_history
from orgmem.lineage.audiences import ORG_AUDIENCE, head_holder, served_groups
from orgmem.serving.resolve import CHECKPOINT_SEPARATOR, GROUP_SEPARATOR

#: (title, metrics key, unit) of the charts on the checkpoints page; "size" is the memory object.
CHART_METRICS = (
    ("Recall of new facts", "new_cloze_recall", ""),
    ("Retention of old facts", "retention_cloze_recall", ""),
    ("Drift: KL to base", "kl", "nats"),
    ("Drift: perplexity ratio", "ppl_ratio", "x"),
    ("Memory size", "size", "KiB"),
)
PENDING_DOCUMENTS_SHOWN = 25


def short(checkpoint_id: str | None) -> str:
    return checkpoint_id[:14] if checkpoint_id else "-"


# -- orgs ----------------------------------------------------------------------------------------

def org_summaries(session: Session, orgs: list[Org], audiences: tuple[str, ...] = (ORG_AUDIENCE,)
                  ) -> list[dict[str, Any]]:
    """The orgs page's rows: each org with its number of sources, pending chunks (of ``audiences``,
    what the viewer reaches) and its newest job."""
    ids = [org.id for org in orgs]
    n_sources = dict(session.execute(
        select(Source.org_id, func.count(Source.id)).where(Source.org_id.in_(ids)).group_by(Source.org_id)
    ).all())
    n_pending = dict(session.execute(
        select(Chunk.org_id, func.count(Chunk.id))
        .join(DocumentVersion, DocumentVersion.id == Chunk.document_version_id)
        .join(Document, Document.id == DocumentVersion.document_id)
        .where(Chunk.org_id.in_(ids), Chunk.status == ChunkStatus.PENDING.value,
               Document.audience.in_(audiences))
        .group_by(Chunk.org_id)
    ).all())
    rows = []
    for org in orgs:
        last = next(iter(list_jobs(session, org, limit=1)), None)
        job = {"id": last.id, "kind": last.kind, "status": last.status, "created_at": last.created_at} \
            if last is not None else None
        rows.append({**org_dict(org), "sources": n_sources.get(org.id, 0),
                     "pending": n_pending.get(org.id, 0), "last_job": job})
    return rows


# -- org overview --------------------------------------------------------------------------------

def sources(session: Session, org: Org) -> list[dict[str, Any]]:
    out = []
    for source in list_sources(session, org):
        stats = source_stats(session, source)
        out.append({"name": source.name, "kind": source.kind, "enabled": source.enabled,
                    "audience": source.audience, "last_sync_at": source.last_sync_at,
                    "last_error": source.last_error, **stats})
    return out


@dataclass
class Pending:
    chunks: int = 0
    tokens: int = 0
    documents: list[dict[str, Any]] = field(default_factory=list)
    more: int = 0


def pending(session: Session, org: Org, audiences: tuple[str, ...] = (ORG_AUDIENCE,)) -> Pending:
    """Chunks waiting for the next consolidation, and the documents they come from (of the
    audiences the key reaches: the org's, and its groups')."""
    visible = (Chunk.org_id == org.id) & (Chunk.status == ChunkStatus.PENDING.value) \
        & Document.audience.in_(audiences)
    rows = session.execute(
        select(Document.id, Document.external_id, func.count(Chunk.id), func.max(Chunk.created_at),
               func.coalesce(func.sum(Chunk.n_tokens), 0))
        .join(DocumentVersion, DocumentVersion.document_id == Document.id)
        .join(Chunk, Chunk.document_version_id == DocumentVersion.id)
        .where(visible)
        .group_by(Document.id, Document.external_id)
        .order_by(func.max(Chunk.created_at).desc(), Document.id.desc())
    ).all()
    docs = [{"id": i, "external_id": ext, "chunks": n, "since": at} for i, ext, n, at, _ in rows]
    chunks, tokens = sum(r[2] for r in rows), sum(r[4] for r in rows)
    more = max(0, len(docs) - PENDING_DOCUMENTS_SHOWN)
    return Pending(chunks, int(tokens), docs[:PENDING_DOCUMENTS_SHOWN], more)


def jobs(session: Session, org: Org, limit: int = 20) -> list[dict[str, Any]]:
    return [job_dict(session, job) for job in list_jobs(session, org, limit=limit)]


def overview(session: Session, org: Org, groups: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"org": org_dict(org), "sources": sources(session, org),
            "pending": pending(session, org, (ORG_AUDIENCE, *groups)), "jobs": jobs(session, org)}


# -- checkpoints ---------------------------------------------------------------------------------

def _memory_size(ck: Checkpoint) -> int | None:
    return next((o.size for o in ck.objects if o.name == MEMORY), None)


@dataclass
class Lineage:
    """Where one audience's lineage stands: its head, pin and served checkpoint."""

    audience: str
    head: str | None = None
    pinned: str | None = None
    served: str | None = None

    @property
    def is_group(self) -> bool:
        return self.audience != ORG_AUDIENCE


def lineage(session: Session, org: Org, audience: str = ORG_AUDIENCE) -> Lineage:
    """``audience``'s head holder as plain values (a group nothing was served from yet has none)."""
    holder = head_holder(session, org, audience)
    if holder is None:
        return Lineage(audience)
    return Lineage(audience, holder.head_checkpoint_id, holder.pinned_checkpoint_id,
                   holder.served_checkpoint_id)


def tree(session: Session, org: Org, audience: str = ORG_AUDIENCE) -> list[dict[str, Any]]:
    """``audience``'s lineage as nested nodes (roots first, children oldest first), each with its markers."""
    roots: list[dict[str, Any]] = []
    by_id: dict[str, dict[str, Any]] = {}
    for node in list_tree(session, org, audience):  # depth-first: a parent always comes before its children
        ck = node.checkpoint
        item = {**node.as_dict(), "short": short(ck.id), "size": _memory_size(ck), "notes": ck.notes,
                "quarantined": ck.status == CheckpointStatus.QUARANTINED.value, "children": [],
                "can_rollback": node.on_head_lineage and not node.is_head,
                "feedback": feedback_summary(ck.metrics)}
        by_id[ck.id] = item
        parent = by_id.get(ck.parent_id) if ck.parent_id else None
        (parent["children"] if parent is not None else roots).append(item)
    return roots


def _metric(ck: Checkpoint, key: str) -> float | None:
    if key == "size":
        size = _memory_size(ck)
        return size / 1024 if size is not None else None
    value = (ck.metrics or {}).get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _usable(org: Org, audiences: tuple[str, ...]) -> tuple:
    """Usable checkpoints of these lineages (each audience's lineage is its own; quarantined are out)."""
    return (Checkpoint.org_id == org.id, Checkpoint.audience.in_(audiences),
            Checkpoint.status != CheckpointStatus.QUARANTINED.value)


def charts(session: Session, org: Org, audience: str = ORG_AUDIENCE) -> list[LineChart]:
    """One chart per metric over ``audience``'s checkpoints (not quarantined), oldest first."""
    rows = list(session.scalars(
        select(Checkpoint)
        .where(*_usable(org, (audience,))).order_by(Checkpoint.created_at, Checkpoint.id)))
    return [line_chart(title, key, [(short(ck.id), _metric(ck, key)) for ck in rows], unit)
            for title, key, unit in CHART_METRICS]


def _group_of(ck: Checkpoint) -> str:
    return "" if ck.audience == ORG_AUDIENCE else f", group {ck.audience}"


def models(session: Session, org: Org, groups: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """What the chat box can talk to: the org (its served checkpoint), each of the key's groups that
    serves something (``ORG#GROUP``), and every usable checkpoint of those lineages."""
    out = [{"id": org.slug, "label": f"{org.slug} (served: {short(org.served_checkpoint_id)})"}]
    out += [{"id": f"{org.slug}{GROUP_SEPARATOR}{group}",
             "label": f"{org.slug}{GROUP_SEPARATOR}{group} (served: {short(ck)})"}
            for group, ck in served_groups(session, org, groups)]
    rows = session.scalars(
        select(Checkpoint)
        .where(*_usable(org, (ORG_AUDIENCE, *groups)))
        .order_by(Checkpoint.created_at.desc(), Checkpoint.id.desc()))
    out += [{"id": f"{org.slug}{CHECKPOINT_SEPARATOR}{ck.id}",
             "label": f"{ck.id} ({ck.status}{_group_of(ck)})"} for ck in rows]
    return out


def history(session: Session, org: Org, audience: str = ORG_AUDIENCE) -> list[dict[str, Any]]:
    """``audience``'s serving events, newest first."""
    return [event_dict(e) for e in reversed(serving_history(session, org, audience))]
