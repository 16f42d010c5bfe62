"""Another org's data for the isolation tests: one of each per-org resource, named with a marker.

The id-oracle test asks org A's routes for these ids (they must answer like unknown ids); the
fuzzer checks that no response to org A's keys contains the marker or any of these ids.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from orgmem.db.models import Document
from orgmem.db.session import session_scope
from orgmem.jobs import create_job
from orgmem.keys import create_key
from orgmem.lineage import get_org
from orgmem.pipeline.forget import forget_document
from orgmem.store import open_store
from tests.lineage_factories import add_chunks
from tests.serving.support import Deployment


@dataclass(frozen=True)
class Planted:
    """Ids of one org's resources (its checkpoint comes from the deployment)."""

    org: str
    marker: str
    checkpoint: str
    job: str
    receipt: str
    source: str
    document: int
    key_id: int

    def identifiers(self) -> list[str]:
        """What must never appear in an answer to another org's key."""
        return [self.marker, self.checkpoint, self.job, self.receipt]


def plant(dep: Deployment, org: str, marker: str, checkpoint: str) -> Planted:
    """A source with two documents (one forgotten: a receipt), a queued job and a key, all of ``org``."""
    url = dep.settings.database_url
    source = f"{marker}-wiki"
    with session_scope(url, write=True) as s:
        org_row = get_org(s, org)
        add_chunks(s, org_row, [f"{marker}-memo", f"{marker}-plan"], source_name=source)
        job = create_job(s, org_row, "sync", {"note": marker}).id
        key = create_key(s, org, "employee", f"{marker}-bot", actor="test").row
        s.flush()
        key_id = key.id
    with session_scope(url) as s:
        receipt = forget_document(s, org, f"{marker}-memo.md", actor="test", reason=marker,
                                  store=open_store(settings=dep.settings)).receipt_id
    with session_scope(url) as s:
        document = s.scalar(select(Document.id).where(Document.external_id == f"{marker}-plan.md"))
    return Planted(org, marker, checkpoint, job, receipt, source, document, key_id)
