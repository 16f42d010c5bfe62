"""Pipeline fixtures: a migrated SQLite database, a local store, the tiny base, and chunk rows.

Chunks are written as rows directly (a source, a document, a version, its chunks) so these tests
exercise the pipeline alone; tests/e2e runs the real connectors.
"""

from __future__ import annotations

import hashlib
import itertools

import pytest

from orgmem.config import get_settings
from orgmem.db import session_scope
from orgmem.db.models import Chunk, Document, DocumentVersion, Source
from orgmem.jobs.settings import get_job_settings
from orgmem.lineage import get_org
from tests.fixtures_home_db import migrated_home_db, org  # noqa: F401  (org: a fixture of this folder)

#: An engine budget that takes about a second on the tiny base.
FAST_ENGINE = {"epochs": 1.0, "max_steps": 3, "tokens_per_step": 256, "max_seq_len": 128, "num_threads": 1}
FAST_PIPELINE = {
    "new_probes": 4,
    "old_probes": 4,
    "cloze_max_new_tokens": 4,
    "bait_max_new_tokens": 4,
    "progress": False,
}
FAST_PARAMS = {"engine": FAST_ENGINE, "pipeline": FAST_PIPELINE}

NIGHT1 = [
    "Heron listens on port 7415 and keeps its route cache in Redis database 3. Routes older than 45 "
    "minutes are stale; restart the warmer with heronctl warm --all.",
    "LEDGERFOX_RETRY_LIMIT = 17 and the settlement window closes at 16:40 Oslo time every weekday.",
]
NIGHT2 = [
    "The Basalt-9 freezer fleet reports every 90 seconds. The maximum refrigerated temperature allowed "
    "is minus 18 degrees Celsius, and Heron plans at most 1200 shipments per batch.",
]

_ids = itertools.count(1)


@pytest.fixture
def db(monkeypatch):
    monkeypatch.setenv("ORGMEM_BASE_MODEL", "tiny-random")
    get_settings.cache_clear()
    get_job_settings.cache_clear()
    yield from migrated_home_db()


def add_chunks(org_slug: str, texts: list[str]) -> list[int]:
    """One document per text with a single pending chunk; returns the chunk ids."""
    ids = []
    with session_scope(write=True) as s:
        org = get_org(s, org_slug)
        source = s.query(Source).filter_by(org_id=org.id, name="fixture").one_or_none()
        if source is None:
            source = Source(org_id=org.id, name="fixture", kind="docs", config={})
            s.add(source)
            s.flush()
        for text in texts:
            n = next(_ids)
            digest = hashlib.sha256(text.encode()).hexdigest()
            doc = Document(org_id=org.id, source_id=source.id, external_id=f"doc{n}", uri=f"file://doc{n}.md")
            s.add(doc)
            s.flush()
            version = DocumentVersion(document_id=doc.id, content_hash=digest, n_chars=len(text))
            s.add(version)
            s.flush()
            chunk = Chunk(
                org_id=org.id,
                document_version_id=version.id,
                seq=0,
                chunk_key=f"{digest[:40]}-{n}",
                text=text,
                n_tokens=len(text) // 4,
            )
            s.add(chunk)
            s.flush()
            ids.append(chunk.id)
    return ids
