"""``orgmem sync --inline``: a sync run in this process, still recorded as a job.

Running through a job row (created, claimed, finished or failed) means an inline sync leaves the
same trace as a queued one: ``orgmem job show`` lists its failures and result.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

from sqlalchemy.orm import Session

from orgmem.db import models as m
from orgmem.db.enums import JobKind
from orgmem.ingest.report import SyncReport
from orgmem.ingest.sync import sync_org

INLINE_LEASE_S = 6 * 3600.0


def run_inline_sync(
    session: Session,
    org: m.Org,
    *,
    source_name: str | None = None,
    progress: bool = True,
    count_tokens: Callable[[str], int] | None = None,
) -> tuple[str, list[SyncReport]]:
    """Sync ``org`` (or one source) now; returns the job id and one report per source."""
    from orgmem.jobs.lease import claim_job
    from orgmem.jobs.lifecycle import fail_job, finish_job
    from orgmem.jobs.records import create_job

    job = create_job(session, org, JobKind.SYNC, {"source": source_name, "inline": True})
    session.commit()
    owner = f"inline:{socket.gethostname()}:{os.getpid()}"
    claim_job(session, job.id, owner, INLINE_LEASE_S)
    try:
        reports = sync_org(
            session, org, source_name=source_name, job_id=job.id, progress=progress, count_tokens=count_tokens
        )
    except Exception as exc:
        session.rollback()
        fail_job(session, job.id, owner, f"{type(exc).__name__}: {exc}")
        raise
    result = {"sources": [r.to_dict() for r in reports]}
    errors = [f"{r.source}: {r.error}" for r in reports if r.error]
    if errors:
        fail_job(session, job.id, owner, "; ".join(errors), details=result)
    else:
        finish_job(session, job.id, owner, result)
    return job.id, reports
