"""Store one document version (governed, chunked) for a source — all of it or nothing.

Each document is written inside its own SAVEPOINT: the version row, its redaction records and
its new pending chunks land together or not at all, so a failure on one document never leaves
a version without its chunks and never takes the neighbours down with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, func, insert, select, update
from sqlalchemy.orm import Session

from connectors.base import DocumentVersion as Incoming
from connectors.base import restricted_audience
from orgmem.chunking import Chunk, ChunkingConfig, chunk_document
from orgmem.db import models as m
from orgmem.db.enums import ChunkStatus
from orgmem.db.types import utcnow
from orgmem.governance import GovernancePolicy, GovernedText, govern
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

    def write(self, doc: Incoming) -> GovernedText | None:
        """Store ``doc`` (a version or a tombstone); counts go to the report. Raises on failure.
        Returns the governed text of a new version (its ``skip_reason`` set when nothing was stored),
        None for an unchanged document or a tombstone."""
        self.report.seen += 1
        if self.is_unchanged(doc):
            self.report.unchanged += 1
            return None
        if doc.deleted:
            with self.session.begin_nested():
                self._tombstone(doc)
            return None
        path = str(doc.metadata.get("path") or doc.title)
        t0 = time.perf_counter()
        governed = govern(doc.text, path=path, policy=self.policy)
        t1 = time.perf_counter()
        self.report.timings["governance_s"] += t1 - t0
        if governed.skip_reason:
            self.report.skipped[governed.skip_reason] += 1
            return governed
        chunks = chunk_document(
            self.org.slug, f"{self.source.name}/{doc.external_id}", governed.text,
            source_kind=self.source.kind, source_name=self.source.name, title=doc.title or doc.external_id,
            path=path, count_tokens=self.count_tokens, config=self.chunking,
        )  # fmt: skip
        t2 = time.perf_counter()
        with self.session.begin_nested():
            document_id, added, excluded = self._store_version(doc, governed, chunks)
        self.report.timings["chunking_s"] += t2 - t1
        self.report.timings["database_s"] += time.perf_counter() - t2
        self.known[doc.external_id] = Known(document_id, doc.content_hash, False)
        self.report.new_versions += 1
        self.report.redactions += len(governed.redactions)
        self.report.chunks_added += added
        self.report.chunks_excluded += excluded
        self.report.chars_stored += len(governed.text)
        return governed

    def _store_version(
        self, doc: Incoming, governed: GovernedText, chunks: list[Chunk]
    ) -> tuple[int, int, int]:
        """Version row, redaction rows, new pending chunks; stale pending chunks of earlier versions
        withdrawn. Returns (document id, chunks added, chunks excluded)."""
        is_new = doc.external_id not in self.known
        document_id = self._document(doc)
        meta = {
            "title": doc.title, "author": doc.author, "uri": doc.uri, "created_at": _iso(doc.created_at),
            "updated_at": _iso(doc.updated_at), "source": dict(doc.metadata),
            "governance": {"ruleset": governed.ruleset, "redactions": len(governed.redactions),
                           "findings": governed.findings()},
            # the passages this version is made of: replay takes only these (pipeline.replay)
            "chunk_keys": [c.key for c in chunks],
        }  # fmt: skip
        version_id = self.session.execute(
            insert(m.DocumentVersion)
            .values(document_id=document_id, content_hash=doc.content_hash, meta=meta, deleted=False,
                    n_chars=len(governed.text))
            .returning(m.DocumentVersion.id)
        ).scalar_one()  # fmt: skip
        if governed.redactions:
            self.session.execute(insert(m.Redaction), [
                {"document_version_id": version_id, "rule": r.rule, "start": r.start, "end": r.end,
                 "placeholder": r.placeholder} for r in governed.redactions])  # fmt: skip
        keys = [c.key for c in chunks]
        existing = set() if is_new else self._existing_keys(keys)  # keys embed the document: none yet
        rows = [
            {"org_id": self.org.id, "document_version_id": version_id, "seq": c.seq, "chunk_key": c.key,
             "text": c.text, "n_tokens": c.n_tokens, "status": ChunkStatus.PENDING.value}
            for c in chunks if c.key not in existing
        ]  # fmt: skip
        if rows:
            self.session.execute(insert(m.Chunk), rows)
        excluded = 0 if is_new else self._exclude_stale(document_id, keep=keys)
        return document_id, len(rows), excluded

    def tombstone_missing(self, live_ids: set[str], keep: Iterable[str]) -> list[str]:
        """External ids stored as live but absent from a full listing (``keep``: ids not to touch)."""
        protected = live_ids | set(keep)
        return sorted(ext for ext, k in self.known.items() if not k.deleted and ext not in protected)

    def _document(self, doc: Incoming) -> int:
        """Id of the document row for ``doc``, created or refreshed (Core statements: no ORM flush)."""
        known = self.known.get(doc.external_id)
        audience = (doc.audience or restricted_audience(self.source.config or {}, doc.external_id)
                    or self.source.audience)
        if known is None:
            stmt = insert(m.Document).values(
                org_id=self.org.id, source_id=self.source.id, external_id=doc.external_id, uri=doc.uri,
                audience=audience, deleted=False,
            )  # fmt: skip
            return self.session.execute(stmt.returning(m.Document.id)).scalar_one()
        self.session.execute(
            update(m.Document).where(m.Document.id == known.document_id)
            .values(uri=doc.uri, audience=audience, deleted=False, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )  # fmt: skip
        return known.document_id

    def _tombstone(self, doc: Incoming) -> None:
        """A deletion version; the document is marked deleted and its pending chunks withdrawn."""
        document_id = self.known[doc.external_id].document_id
        self.session.execute(
            update(m.Document).where(m.Document.id == document_id).values(deleted=True, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )  # fmt: skip
        self.session.execute(insert(m.DocumentVersion).values(
            document_id=document_id, content_hash=doc.content_hash, deleted=True, n_chars=0,
            meta={"uri": doc.uri, "title": doc.title},
        ))  # fmt: skip
        excluded = self._exclude_stale(document_id, keep=[])
        self.known[doc.external_id] = Known(document_id, doc.content_hash, True)
        self.report.tombstones += 1
        self.report.tombstoned.append(document_id)
        self.report.chunks_excluded += excluded

    def _existing_keys(self, keys: list[str]) -> set[str]:
        if not keys:
            return set()
        found = self.session.scalars(
            select(m.Chunk.chunk_key).where(m.Chunk.org_id == self.org.id, m.Chunk.chunk_key.in_(keys))
        )
        return set(found)

    def _exclude_stale(self, document_id: int, keep: list[str]) -> int:
        """Withdraw pending chunks of this document whose text is gone: nobody should learn stale text.

        The version ids are looked up first so the update goes through the chunks' version index
        (with a subquery SQLite prefers the (org, status) index and scans every pending chunk).
        """
        versions = list(self.session.scalars(
            select(m.DocumentVersion.id).where(m.DocumentVersion.document_id == document_id)))  # fmt: skip
        if not versions:
            return 0
        stmt = (
            update(m.Chunk)
            .where(m.Chunk.document_version_id.in_(versions), m.Chunk.status == ChunkStatus.PENDING.value)
            .values(status=ChunkStatus.EXCLUDED.value)
            .execution_options(synchronize_session=False)
        )
        if keep:
            stmt = stmt.where(m.Chunk.chunk_key.not_in(keep))
        return cast(CursorResult, self.session.execute(stmt)).rowcount or 0  # an UPDATE's cursor result
