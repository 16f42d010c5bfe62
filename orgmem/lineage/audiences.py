"""Audiences: ``org`` (everyone in the org) or a named group, each with its own lineage.

Material is written only into the memory of its own audience: the org memory never trains on a
group's documents (nor on a private Slack channel's, whose audience is ``slack-private:NAME``),
and a group memory is served only to keys that carry the group, stacked on the org memory.

The *head holder* of an audience is where its head and pin live: the ``Org`` row for ``org``
(unchanged from before audiences), an ``AudienceHead`` row for a group. Both expose
``head_checkpoint_id``, ``pinned_checkpoint_id`` and ``served_checkpoint_id``, so the lineage
operations treat them alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from orgmem.db.enums import ChunkStatus
from orgmem.db.models import AudienceHead, Chunk, Document, DocumentVersion, Org
from orgmem.errors import OrgmemError, matching_name

ORG_AUDIENCE = "org"
GROUP_RE = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")

HeadHolder = Org | AudienceHead


def validate_audience(name: str) -> str:
    """``org`` or a group name; group names appear in model ids and headers, hence the alphabet."""
    return matching_name(
        name, GROUP_RE, OrgmemError,
        f"invalid audience {name!r}: use 'org' or a group name of 1-64 characters a-z, 0-9, "
        "'_', '.', ':' and '-' (e.g. 'eng', 'slack-private:plans')",
    )


def validate_groups(groups: Iterable[str] | None) -> list[str]:
    """A key's groups: valid group names, without ``org`` (every key reaches the org memory)."""
    out: list[str] = []
    for group in groups or ():
        validate_audience(group)
        if group == ORG_AUDIENCE:
            raise OrgmemError("'org' is not a group: every key of the org already reaches the org memory")
        if group not in out:
            out.append(group)
    return sorted(out)


def head_holder(session: Session, org: Org, audience: str = ORG_AUDIENCE, *, create: bool = False,
                for_update: bool = False) -> HeadHolder | None:
    """Where ``audience``'s head and pin live; None for a group without a lineage (unless ``create``)."""
    validate_audience(audience)
    if audience == ORG_AUDIENCE:
        return org
    query = select(AudienceHead).where(AudienceHead.org_id == org.id, AudienceHead.audience == audience)
    if for_update:
        query = query.with_for_update()
    holder = session.scalar(query)
    if holder is None and create:
        holder = AudienceHead(org_id=org.id, audience=audience)
        session.add(holder)
        session.flush()
    return holder


def group_heads(session: Session, org: Org) -> list[AudienceHead]:
    """Every group lineage of ``org``, by name."""
    query = select(AudienceHead).where(AudienceHead.org_id == org.id).order_by(AudienceHead.audience)
    return list(session.scalars(query))


def served_groups(session: Session, org: Org, groups: Iterable[str]) -> list[tuple[str, str]]:
    """``(group, served checkpoint)`` for each of ``groups`` that serves something, by name."""
    wanted = set(groups)
    return [(h.audience, h.served_checkpoint_id) for h in group_heads(session, org)
            if h.audience in wanted and h.served_checkpoint_id is not None]


def audience_chunk_ids(org: Org, audience: str):
    """A subquery of the ids of ``org``'s chunks whose document belongs to ``audience``."""
    return (
        select(Chunk.id)
        .join(DocumentVersion, DocumentVersion.id == Chunk.document_version_id)
        .join(Document, Document.id == DocumentVersion.document_id)
        .where(Chunk.org_id == org.id, Document.audience == audience)
    )


def audiences_of_chunks(session: Session, chunk_ids: Iterable[int]) -> dict[int, str]:
    """chunk id -> the audience of its document."""
    ids = list(chunk_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(Chunk.id, Document.audience)
        .join(DocumentVersion, DocumentVersion.id == Chunk.document_version_id)
        .join(Document, Document.id == DocumentVersion.document_id)
        .where(Chunk.id.in_(ids))
    )
    return {cid: audience for cid, audience in rows}


def pending_groups(session: Session, org: Org) -> list[str]:
    """Groups of ``org`` with pending chunks (what a nightly run consolidates after the org), by name."""
    query = (
        select(Document.audience)
        .join(DocumentVersion, DocumentVersion.document_id == Document.id)
        .join(Chunk, Chunk.document_version_id == DocumentVersion.id)
        .where(Chunk.org_id == org.id, Chunk.status == ChunkStatus.PENDING.value,
               Document.audience != ORG_AUDIENCE)
        .distinct()
    )
    return sorted(session.scalars(query))
