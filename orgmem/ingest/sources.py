"""Register, list and remove an org's sources. Configs are validated by the connector's model first,
so a source with a typo never gets stored and fails at 2 a.m. instead."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from connectors.base import parse_config
from orgmem.db import models as m
from orgmem.db.enums import ChunkStatus
from orgmem.errors import ConflictError, NotFoundError
from orgmem.lineage.audit import record_audit

logger = logging.getLogger(__name__)


def add_source(
    session: Session,
    org: m.Org,
    kind: str,
    name: str,
    config: dict[str, Any],
    *,
    audience: str = "org",
    actor: str = "system",
) -> m.Source:
    """A new source; the config is validated (errors name the field) and stored normalised."""
    if not name or len(name) > 100:
        raise ConflictError(f"source name {name!r} must be 1-100 characters")
    parsed = parse_config(kind, config)
    if session.scalar(select(m.Source.id).where(m.Source.org_id == org.id, m.Source.name == name)):
        raise ConflictError(f"org {org.slug!r} already has a source named {name!r}")
    source = m.Source(
        org_id=org.id,
        name=name,
        kind=kind,
        audience=audience,
        enabled=True,
        config=parsed.model_dump(mode="json", exclude_defaults=True),
        cursor=None,
    )
    session.add(source)
    session.flush()
    record_audit(
        session,
        org_id=org.id,
        actor=actor,
        action="source.add",
        target=name,
        data={"kind": kind, "audience": audience},
    )
    logger.info("source added", extra={"org": org.slug, "source": name, "kind": kind})
    return source


def list_sources(session: Session, org: m.Org) -> list[m.Source]:
    return list(session.scalars(select(m.Source).where(m.Source.org_id == org.id).order_by(m.Source.name)))


def get_source(session: Session, org: m.Org, name: str) -> m.Source:
    source = session.scalar(select(m.Source).where(m.Source.org_id == org.id, m.Source.name == name))
    if source is None:
        raise NotFoundError(
            f"org {org.slug!r} has no source named {name!r} (see `orgmem source list {org.slug}`)"
        )
    return source


def source_stats(session: Session, source: m.Source) -> dict[str, int]:
    """Documents (live) and chunks by status, for ``source list``."""
    docs = (
        session.scalar(select(func.count()).where(m.Document.source_id == source.id, ~m.Document.deleted))
        or 0
    )
    by_status = dict(
        session.execute(
            select(m.Chunk.status, func.count())
            .join(m.DocumentVersion)
            .join(m.Document)
            .where(m.Document.source_id == source.id)
            .group_by(m.Chunk.status)
        ).all()
    )
    return {"documents": docs, **{s.value: by_status.get(s.value, 0) for s in ChunkStatus}}


def _chunks_of(source: m.Source):
    versions = (
        select(m.DocumentVersion.id)
        .join(m.Document)
        .where(m.Document.source_id == source.id)
        .scalar_subquery()
    )
    return m.Chunk.document_version_id.in_(versions)


def remove_source(
    session: Session, org: m.Org, name: str, *, disable_if_used: bool = False, actor: str = "system"
) -> str:
    """Delete a source with its documents and chunks, unless a checkpoint consumed them.

    Checkpoint lineage points at consumed chunks, so such a source cannot be deleted; with
    ``disable_if_used`` it is disabled instead and its pending chunks withdrawn. Returns
    "removed" or "disabled".
    """
    source = get_source(session, org, name)
    used = (
        session.scalar(
            select(func.count())
            .select_from(m.CheckpointInput)
            .join(m.Chunk, m.Chunk.id == m.CheckpointInput.chunk_id)
            .where(_chunks_of(source))
        )
        or 0
    )
    if used and not disable_if_used:
        raise ConflictError(
            f"source {name!r} of org {org.slug!r} has {used} chunk(s) consumed by checkpoints; "
            "deleting it would break lineage: use --disable, or `orgmem forget` per document"
        )
    if used:
        source.enabled = False
        session.execute(
            update(m.Chunk)
            .where(_chunks_of(source), m.Chunk.status == ChunkStatus.PENDING.value)
            .values(status=ChunkStatus.EXCLUDED.value)
            .execution_options(synchronize_session=False)
        )
        outcome = "disabled"
    else:
        session.delete(source)
        outcome = "removed"
    session.flush()
    record_audit(session, org_id=org.id, actor=actor, action=f"source.{outcome[:-1]}", target=name)
    logger.info(f"source {outcome}", extra={"org": org.slug, "source": name})
    return outcome
