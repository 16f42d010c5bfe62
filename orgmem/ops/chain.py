"""The nightly chain: sync, then the org's consolidation, then each group that has pending chunks
or approved corrections waiting.

An org runs one consolidation at a time (its lease), so the chain is a sequence of ordinary
consolidation jobs, each created when the previous one finished (succeeded or failed: what the
others have pending is still worth training; a cancelled job ends the chain). The org goes
first because a group trains on the org's served memory (``orgmem.pipeline.underlay``). Groups
follow in name order, each once per night: after group ``g`` only groups named after ``g`` are
considered, so a group whose checkpoint the gate rejected (its chunks stay pending) cannot loop.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from orgmem.db.enums import JobKind
from orgmem.db.models import Job, Org
from orgmem.db.session import get_row
from orgmem.feedback.corrections import waiting_groups
from orgmem.lineage.audiences import ORG_AUDIENCE, pending_groups

CHAIN_KEY = "then_groups"


def after_sync(job: Job) -> dict[str, Any] | None:
    """Params of the org consolidation a finished sync asked for (``then_consolidate``), else None."""
    if job.kind != JobKind.SYNC.value or not job.params.get("then_consolidate"):
        return None
    return {"after_sync": job.id, CHAIN_KEY: True}


def next_group(session: Session, job: Job) -> dict[str, Any] | None:
    """Params of the chain's next group consolidation after ``job``, or None when the night is done."""
    if job.kind != JobKind.CONSOLIDATE.value or not job.params.get(CHAIN_KEY) or job.org_id is None:
        return None
    done = job.params.get("audience") or ORG_AUDIENCE
    org = get_row(session, Org, job.org_id)
    pending = sorted({*pending_groups(session, org), *waiting_groups(session, org)})  # chunks or corrections
    groups = [g for g in pending if done == ORG_AUDIENCE or g > done]
    if not groups:
        return None
    return {"audience": groups[0], "after": job.id, CHAIN_KEY: True}
