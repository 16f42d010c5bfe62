"""Test data for lineage tests: documents with chunks, and checkpoints with small fake objects."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy.orm import Session

from orgmem.checkpoints import MEMORY, TRAIN_STATE, CheckpointDraft, InputRef, commit_checkpoint
from orgmem.db.models import Checkpoint, Chunk, Document, DocumentVersion, Org, Source
from orgmem.store.base import ObjectStore


def add_chunks(session: Session, org: Org, texts: list[str], source_name: str = "docs") -> list[Chunk]:
    """One document version per text, one chunk each; committed, ids assigned."""
    source = session.query(Source).filter_by(org_id=org.id, name=source_name).one_or_none()
    if source is None:
        source = Source(org_id=org.id, name=source_name, kind="docs", config={})
        session.add(source)
        session.flush()
    chunks = []
    for text in texts:
        key = hashlib.sha256(f"{org.slug}:{text}".encode()).hexdigest()
        doc = Document(org_id=org.id, source_id=source.id, external_id=f"{text}.md", uri=f"file:///{text}.md")
        session.add(doc)
        session.flush()
        version = DocumentVersion(document_id=doc.id, content_hash=key, meta={}, n_chars=len(text))
        session.add(version)
        session.flush()
        chunk = Chunk(
            org_id=org.id, document_version_id=version.id, seq=0, chunk_key=key, text=text, n_tokens=3
        )
        session.add(chunk)
        chunks.append(chunk)
    session.commit()
    return chunks


def record(
    session: Session,
    store: ObjectStore,
    org: Org | str,
    parent: str | None,
    chunks: list[Chunk],
    status: str = "candidate",
    replay: list[Chunk] | None = None,
    metrics: dict[str, Any] | None = None,
) -> Checkpoint:
    """Commit a checkpoint trained on ``chunks`` (new) and ``replay``, with tiny fake objects."""
    inputs = [InputRef(c.id) for c in chunks] + [InputRef(c.id, "replay") for c in replay or []]
    tag = ",".join(sorted(c.chunk_key[:8] for c in chunks)) + f"<{parent}"
    draft = CheckpointDraft(
        org=org,
        parent_id=parent,
        objects={MEMORY: b"memory:" + tag.encode(), TRAIN_STATE: b"state:" + tag.encode()},
        manifest={"note": "test"},
        inputs=inputs,
        metrics=metrics or {"recall": 0.5},
        status=status,
        created_by="test",
        base_model="tiny-random",
        base_fingerprint="f" * 64,
        memory_kind="cms",
        memory_config={"levels": 2},
    )
    return commit_checkpoint(session, store, draft).checkpoint
