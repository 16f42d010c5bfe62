"""Run a source's connector and store what it yields: governance → chunking → pending chunks.

Guarantees:
- each document version is stored whole with its chunks (see ``SourceWriter``), in transactions
  of at most ``BATCH_DOCS`` documents, so a crash loses at most an uncommitted batch, never half a document;
- the cursor advances only after the iteration finished and every batch is committed: the one the
  connector's generator returned, narrowed by ``retry_cursor`` to still cover the items not stored;
- a source that cannot be read at all (missing repo, corrupt zip, 404 feed) is recorded on the
  source (``last_error``), as a sync failure and on the job; nothing of its cursor moves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.orm import Session
from tqdm import tqdm

from connectors.base import DocumentFailure, DocumentVersion, Pull
from connectors.registry import get_connector, parse_config
from orgmem.chunking import ChunkingConfig, token_counter
from orgmem.config import get_settings
from orgmem.db import models as m
from orgmem.db.session import begin_write
from orgmem.db.types import utcnow
from orgmem.errors import ConflictError, NotFoundError, OrgmemError
from orgmem.governance import GovernancePolicy
from orgmem.ingest.conversations.policy import CONVERSATIONS_KIND
from orgmem.ingest.report import SyncReport
from orgmem.ingest.writer import SourceWriter

logger = logging.getLogger(__name__)

BATCH_DOCS = 64  # documents per transaction: short write locks on SQLite, few commits on PostgreSQL


@lru_cache(maxsize=4)
def _counter_for_model(name: str) -> Callable[[str], int]:
    from orgmem.models.loader import load_tokenizer

    return token_counter(load_tokenizer(name))


def default_token_counter() -> Callable[[str], int]:
    """Token length in the configured base model's tokenizer (loaded once per process)."""
    return _counter_for_model(get_settings().base_model)


class _Run:
    """State of one sync: the writer, the batch in progress, and what could not be stored."""

    def __init__(
        self, session: Session, source: m.Source, org: m.Org, report: SyncReport, job_id: str | None
    ) -> None:
        self.session, self.source, self.org, self.report, self.job_id = session, source, org, report, job_id
        self.writer: SourceWriter | None = None
        self.unstored: set[str] = set()
        self.in_batch = 0

    def fail(self, item: str, error: str, external_id: str | None = None) -> None:
        """Record one item that was not stored (sync_failures row, job event, report)."""
        if external_id:
            self.unstored.add(external_id)
        self.report.failures.append((item, error))
        self.session.add(
            m.SyncFailure(source_id=self.source.id, job_id=self.job_id, item=item[:4000], error=error)
        )
        if self.job_id:
            from orgmem.jobs.records import add_event

            add_event(
                self.session, self.job_id, f"{self.source.name}: {error}", level="error", data={"item": item}
            )
        logger.warning(
            "sync item failed",
            extra={"org": self.org.slug, "source": self.source.name, "item": item, "error": error},
        )

    def store(self, doc: DocumentVersion) -> None:
        if self.writer is None:
            raise RuntimeError("store() before the sync opened its writer")
        try:
            self.writer.write(doc)
        except Exception as exc:  # one bad document must not stop the rest; it is recorded and retried
            self.fail(
                doc.uri or doc.external_id,
                f"storing {doc.external_id} failed: {type(exc).__name__}: {exc}",
                doc.external_id,
            )
        self.in_batch += 1
        if self.in_batch >= BATCH_DOCS:
            self.commit()

    def commit(self) -> None:
        self.session.commit()
        begin_write(self.session)
        self.in_batch = 0

    def execute(
        self, count_tokens: Callable[[str], int] | None, chunking: ChunkingConfig | None, progress: bool
    ) -> None:
        """Fetch, store, and only then move the cursor."""
        config = parse_config(self.source.kind, self.source.config)
        connector = get_connector(self.source.kind)
        connector.org = self.org.slug  # the operator's confinement for this org, checked again now
        self.writer = SourceWriter(
            self.session,
            self.org,
            self.source,
            self.report,
            policy=GovernancePolicy(frozenset(config.redact_pii)),
            count_tokens=count_tokens or default_token_counter(),
            chunking=chunking,
        )
        previous = self.source.cursor
        items = Pull(connector.fetch(config, previous))  # the generator returns the next cursor
        for item in tqdm(
            items,
            desc=f"sync {self.org.slug}/{self.source.name}",
            unit="doc",
            disable=not progress,
            leave=False,
        ):
            if isinstance(item, DocumentFailure):
                self.fail(item.item, item.error, item.external_id)
            else:
                self.store(item)
        if connector.live_ids is not None:  # a full listing: what is stored but gone is deleted
            for ext in self.writer.tombstone_missing(connector.live_ids, self.unstored):
                self.store(DocumentVersion.tombstone(ext, "", title=ext))
        self.commit()
        self.source.cursor = connector.retry_cursor(previous, items.result, self.unstored)
        self.report.cursor_advanced = True
        self.report.skipped.update(connector.skipped)


def sync_source(
    session: Session,
    source: m.Source,
    *,
    job_id: str | None = None,
    progress: bool = True,
    count_tokens: Callable[[str], int] | None = None,
    chunking: ChunkingConfig | None = None,
) -> SyncReport:
    """Sync one source; returns the report (``report.error`` set when the source could not be read)."""
    org = session.get(m.Org, source.org_id)
    if org is None:
        raise NotFoundError(f"source {source.name!r} belongs to no org (id {source.org_id})")
    if not source.enabled:
        raise ConflictError(f"source {source.name!r} of org {org.slug!r} is disabled")
    report = SyncReport(org=org.slug, source=source.name, kind=source.kind)
    if source.kind == CONVERSATIONS_KIND:  # its turns are recorded as they finish: nothing to fetch
        return report
    log = {"org": org.slug, "source": source.name, "kind": source.kind}
    logger.info("sync started", extra=log)
    started = time.monotonic()
    begin_write(session)
    run = _Run(session, source, org, report, job_id)
    try:
        run.execute(count_tokens, chunking, progress)
    except Exception as exc:  # the sync job's boundary: whatever stopped the source is recorded on it
        if not isinstance(exc, OrgmemError):
            logger.exception("sync crashed", extra=log)
        try:
            session.commit()  # documents already written are whole: keep them
        except Exception:
            session.rollback()
        begin_write(session)
        report.error = str(exc) if isinstance(exc, OrgmemError) else f"{type(exc).__name__}: {exc}"
        run.fail(f"source {source.name}", report.error)
    report.elapsed_s = time.monotonic() - started
    source.last_sync_at = utcnow()
    source.last_error = report.error or (
        f"{len(report.failures)} item(s) failed; first: {report.failures[0][1]}" if report.failures else None
    )
    session.commit()
    if report.tombstoned and (source.config or {}).get("forget_on_delete"):
        _forget_tombstones(session, source, org, report, job_id)
    logger.info("sync finished", extra={**log, **{k: v for k, v in report.to_dict().items() if k not in log}})
    return report


def _forget_tombstones(
    session: Session, source: m.Source, org: m.Org, report: SyncReport, job_id: str | None
) -> None:
    """``forget_on_delete``: forget each document deleted at the source, after the sync committed.

    A forget that is refused (a consolidation holds the org) is recorded as a sync failure naming
    the document, so an admin can run ``orgmem forget`` once the consolidation is done.
    """
    from orgmem.pipeline.forget import forget_document

    for document_id in report.tombstoned:
        try:
            result = forget_document(
                session, org.slug, document_id, actor=f"sync:{source.name}",
                reason=f"deleted at source {source.name!r}",
            )  # fmt: skip
            report.forgotten.append(result.receipt)
        except OrgmemError as exc:
            session.rollback()
            begin_write(session)
            error = f"forgetting deleted document {document_id} failed: {exc}"
            report.failures.append((f"document {document_id}", error))
            session.add(m.SyncFailure(source_id=source.id, job_id=job_id, item=f"document {document_id}",
                                      error=error))  # fmt: skip
            session.commit()
            logger.error("tombstone not forgotten", extra={"org": org.slug, "document": document_id})


def sync_org(
    session: Session,
    org: m.Org,
    *,
    source_name: str | None = None,
    job_id: str | None = None,
    progress: bool = True,
    count_tokens: Callable[[str], int] | None = None,
) -> list[SyncReport]:
    """Sync every enabled source of ``org`` (or only ``source_name``), one after another."""
    from orgmem.ingest.sources import get_source

    if source_name:
        sources = [get_source(session, org, source_name)]
    else:
        sources = list(
            session.scalars(
                select(m.Source).where(m.Source.org_id == org.id, m.Source.enabled).order_by(m.Source.name)
            )
        )
    return [
        sync_source(session, s, job_id=job_id, progress=progress, count_tokens=count_tokens) for s in sources
    ]
