"""Organizations: create, list, look up by slug."""

from __future__ import annotations

import logging
import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session

from orgmem.db.models import Org
from orgmem.errors import ConflictError, NotFoundError, OrgmemError, matching_name
from orgmem.lineage.audit import record_audit

logger = logging.getLogger(__name__)

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


def validate_slug(slug: str) -> str:
    """Slugs appear in object keys and URLs, so they are lowercase, short and path-safe."""
    return matching_name(
        slug, SLUG_RE, OrgmemError,
        f"invalid org slug {slug!r}: use 2-63 characters a-z, 0-9 and '-', starting with a letter/digit",
    )


def create_org(session: Session, slug: str, name: str | None = None, *, actor: str = "system") -> Org:
    validate_slug(slug)
    if session.scalar(select(Org.id).where(Org.slug == slug)) is not None:
        raise ConflictError(f"org {slug!r} already exists")
    org = Org(slug=slug, name=name or slug, gate_config={})
    session.add(org)
    try:
        session.flush()
    except DBIntegrityError:  # created concurrently by another process
        session.rollback()
        raise ConflictError(f"org {slug!r} already exists") from None
    record_audit(
        session, org_id=org.id, actor=actor, action="org.create", target=slug, data={"name": org.name}
    )
    logger.info("created org", extra={"org": slug})
    return org


def list_orgs(session: Session) -> list[Org]:
    return list(session.scalars(select(Org).order_by(Org.slug)))


def get_org(session: Session, slug: str, *, for_update: bool = False) -> Org:
    """The org named ``slug``; ``for_update`` locks its row (PostgreSQL) to serialize lineage changes."""
    query = select(Org).where(Org.slug == slug)
    if for_update:
        query = query.with_for_update()
    org = session.scalar(query)
    if org is None:
        raise NotFoundError(f"org {slug!r} not found (see `orgmem org list`)")
    return org


def resolve_org(session: Session, org: Org | str, *, for_update: bool = False) -> Org:
    """Accept an Org or a slug, so library callers can pass whichever they hold."""
    if isinstance(org, Org):
        if for_update:
            return get_org(session, org.slug, for_update=True)
        return org
    return get_org(session, org, for_update=for_update)
