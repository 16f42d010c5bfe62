"""Register, list and remove an org's sources. Configs are validated by the connector's model first,
so a source with a typo never gets stored and fails at 2 a.m. instead."""

from __future__ import annotations

import logging
import re
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from connectors.base import SourceConfigError, SourceError
from connectors.policy import SourcePolicy
from connectors.registry import get_connector, parse_config
from orgmem.config import Settings
from orgmem.db import models as m
from orgmem.db.enums import ChunkStatus
from orgmem.errors import ConflictError, NotFoundError, matching_name
from orgmem.ingest.conversations.policy import refuse_builtin_kind
from orgmem.lineage.audit import record_audit

logger = logging.getLogger(__name__)

#: Source names appear in URLs, file names and the console: a slug, like org slugs (``_`` allowed too).
SOURCE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def validate_source_name(name: str) -> str:
    return matching_name(
        name, SOURCE_NAME_RE, SourceConfigError,
        f"invalid source name {name!r}: a source name is 1-63 characters of a-z, 0-9, '-' and '_', "
        "starting with a letter or digit (e.g. 'handbook', 'backend-code')",
    )


def check_source(
    org: m.Org, kind: str, name: str, config: dict[str, Any], *, admin: bool, settings: Settings | None = None
) -> None:
    """What a sync would refuse, refused now: confinement, then the path, repository, zip or feed.

    ``admin``: the caller is an org admin (the API), always confined to the org's roots; otherwise
    the operator (CLI, in-process callers). The error names the source.
    """
    refuse_builtin_kind(kind)
    parsed = parse_config(kind, config)
    connector = get_connector(kind)
    connector.org = org.slug
    connector.policy = SourcePolicy.for_org(org.slug, operator=not admin, settings=settings)
    try:
        connector.check(parsed)
    except SourceError as exc:
        err = type(exc)(f"{kind} source {name!r} of org {org.slug!r}: {exc}")
        err.exit_code = exc.exit_code
        raise err from None


def add_source(  # noqa: PLR0913  # a source's recorded fields, as the CLI and API take them
    session: Session,
    org: m.Org,
    kind: str,
    name: str,
    config: dict[str, Any],
    *,
    audience: str = "org",
    actor: str = "system",
    admin: bool = False,
    check: bool = True,
    settings: Settings | None = None,
) -> m.Source:
    """A new source; the config is validated (errors name the field) and stored normalised.

    With ``check`` (the default) the connector also proves the source can sync (see ``check_source``);
    ``admin=True`` for sources added by an org admin through the API.
    """
    validate_source_name(name)
    refuse_builtin_kind(kind)
    parsed = parse_config(kind, config)
    if session.scalar(select(m.Source.id).where(m.Source.org_id == org.id, m.Source.name == name)):
        raise ConflictError(f"org {org.slug!r} already has a source named {name!r}")
    if check:
        check_source(org, kind, name, config, admin=admin, settings=settings)
    elif admin:
        raise ValueError("sources added by an org admin are always checked")
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


def check_registered(
    session: Session, org: m.Org, name: str, *, admin: bool = False, settings: Settings | None = None
) -> m.Source:
    """Run the add-time check on a registered source (``orgmem source test``); raises what a sync would."""
    source = get_source(session, org, name)
    check_source(org, source.kind, source.name, source.config, admin=admin, settings=settings)
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
