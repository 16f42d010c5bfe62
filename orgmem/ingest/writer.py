"""Store one document version (governed, chunked) for a source — all of it or nothing.

Each document is written inside its own SAVEPOINT: the version row, its redaction records and
its new pending chunks land together or not at all, so a failure on one document never leaves
a version without its chunks and never takes the neighbours down with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from connectors.base import DocumentVersion as Incoming
from orgmem.chunking import ChunkingConfig, chunk_document
from orgmem.db import models as m
from orgmem.db.enums import ChunkStatus
from orgmem.governance import GovernancePolicy, govern
from orgmem.ingest.report import SyncReport


@dataclass
class Known:
    """What the database already holds for one external id: its document and latest version."""

    document_id: int
    content_hash: str | None
    deleted: bool


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


class SourceWriter:
    """Writes a source's incoming versions; ``known`` is loaded once so unchanged documents cost no query."""

    def __init__(
        self,
        session: Session,
        org: m.Org,
        source: m.Source,
        report: SyncReport,
        *,
        policy: GovernancePolicy,
        count_tokens: Callable[[str], int],
        chunking: ChunkingConfig | None = None,
    ) -> None:
        self.session, self.org, self.source, self.report = session, org, source, report
        self.policy, self.count_tokens, self.chunking = policy, count_tokens, chunking
        self.known = self._load_known()

    def _load_known(self) -> dict[str, Known]:
        latest = (
            select(m.DocumentVersion.document_id, func.max(m.DocumentVersion.id).label("vid"))
            .group_by(m.DocumentVersion.document_id)
            .subquery()
        )
        rows = self.session.execute(
            select(m.Document.external_id, m.Document.id, m.Document.deleted, m.DocumentVersion.content_hash)
            .join(latest, latest.c.document_id == m.Document.id, isouter=True)
            .join(m.DocumentVersion, m.DocumentVersion.id == latest.c.vid, isouter=True)
            .where(m.Document.source_id == self.source.id)
        )
        return {ext: Known(doc_id, content_hash, deleted) for ext, doc_id, deleted, content_hash in rows}

    def is_unchanged(self, doc: Incoming) -> bool:
        known = self.known.get(doc.external_id)
        if doc.deleted:
            return known is None or known.deleted
        return known is not None and not known.deleted and known.content_hash == doc.content_hash

    def write(self, doc: Incoming) -> None:
        """Store ``doc`` (a version or a tombstone); counts go to the report. Raises on failure."""
        self.report.seen += 1
        if self.is_unchanged(doc):
            self.report.unchanged += 1
            return
        if doc.deleted:
            with self.session.begin_nested():
                self._tombstone(doc)
            return
        governed = govern(doc.text, path=str(doc.metadata.get("path") or doc.title), policy=self.policy)
        if governed.skip_reason:
            self.report.skipped[governed.skip_reason] += 1
            return
        chunks = chunk_document(
            self.org.slug,
            doc.external_id,
            governed.text,
            source_kind=self.source.kind,
            source_name=self.source.name,
            title=doc.title or doc.external_id,
            path=str(doc.metadata.get("path") or doc.title),
            count_tokens=self.count_tokens,
            config=self.chunking,
        )
        with self.session.begin_nested():
            document = self._document(doc)
            meta = {
                "title": doc.title,
                "author": doc.author,
                "uri": doc.uri,
                "created_at": _iso(doc.created_at),
                "updated_at": _iso(doc.updated_at),
                "source": dict(doc.metadata),
                "governance": {"ruleset": governed.ruleset, "redactions": len(governed.redactions)},
            }
            version = m.DocumentVersion(
                document_id=document.id,
                content_hash=doc.content_hash,
                meta=meta,
                deleted=False,
                n_chars=len(governed.text),
            )
            self.session.add(version)
            self.session.flush()
            self.session.add_all(
                m.Redaction(
                    document_version_id=version.id,
                    rule=r.rule,
                    start=r.start,
                    end=r.end,
                    placeholder=r.placeholder,
                )
                for r in governed.redactions
            )
            keys = [c.key for c in chunks]
            existing = self._existing_keys(keys)
            self.session.add_all(
                m.Chunk(
                    org_id=self.org.id,
                    document_version_id=version.id,
                    seq=c.seq,
                    chunk_key=c.key,
                    text=c.text,
                    n_tokens=c.n_tokens,
                    status=ChunkStatus.PENDING.value,
                )
                for c in chunks
                if c.key not in existing
            )
            excluded = self._exclude_stale(document.id, keep=keys)
            self.session.flush()
        self.known[doc.external_id] = Known(document.id, doc.content_hash, False)
        self.report.new_versions += 1
        self.report.redactions += len(governed.redactions)
        self.report.chunks_added += sum(1 for c in chunks if c.key not in existing)
        self.report.chunks_excluded += excluded
        self.report.chars_stored += len(governed.text)

    def tombstone_missing(self, live_ids: set[str], keep: Iterable[str]) -> list[str]:
        """External ids stored as live but absent from a full listing (``keep``: ids not to touch)."""
        protected = live_ids | set(keep)
        return sorted(ext for ext, k in self.known.items() if not k.deleted and ext not in protected)

    def _document(self, doc: Incoming) -> m.Document:
        known = self.known.get(doc.external_id)
        audience = doc.audience or self.source.audience
        if known is None:
            document = m.Document(
                org_id=self.org.id,
                source_id=self.source.id,
                external_id=doc.external_id,
                uri=doc.uri,
                audience=audience,
                deleted=False,
            )
            self.session.add(document)
            self.session.flush()
            return document
        document = self.session.get(m.Document, known.document_id)
        assert document is not None
        document.uri, document.audience, document.deleted = doc.uri, audience, False
        return document

    def _tombstone(self, doc: Incoming) -> None:
        known = self.known[doc.external_id]
        document = self.session.get(m.Document, known.document_id)
        assert document is not None
        document.deleted = True
        self.session.add(
            m.DocumentVersion(
                document_id=document.id,
                content_hash=doc.content_hash,
                deleted=True,
                n_chars=0,
                meta={"uri": doc.uri, "title": doc.title},
            )
        )
        excluded = self._exclude_stale(document.id, keep=[])
        self.session.flush()
        self.known[doc.external_id] = Known(document.id, doc.content_hash, True)
        self.report.tombstones += 1
        self.report.chunks_excluded += excluded

    def _existing_keys(self, keys: list[str]) -> set[str]:
        if not keys:
            return set()
        found = self.session.scalars(
            select(m.Chunk.chunk_key).where(m.Chunk.org_id == self.org.id, m.Chunk.chunk_key.in_(keys))
        )
        return set(found)

    def _exclude_stale(self, document_id: int, keep: list[str]) -> int:
        """Withdraw pending chunks of this document whose text is gone: nobody should learn stale text."""
        versions = select(m.DocumentVersion.id).where(m.DocumentVersion.document_id == document_id)
        stmt = (
            update(m.Chunk)
            .where(
                m.Chunk.org_id == self.org.id,
                m.Chunk.status == ChunkStatus.PENDING.value,
                m.Chunk.document_version_id.in_(versions),
            )
            .values(status=ChunkStatus.EXCLUDED.value)
            .execution_options(synchronize_session=False)
        )
        if keep:
            stmt = stmt.where(m.Chunk.chunk_key.not_in(keep))
        return self.session.execute(stmt).rowcount or 0
