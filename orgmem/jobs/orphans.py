"""Close a running job whose lease holder died on this machine, so it stops locking its org.

Called wherever a held lease would refuse work (a claim of the org's consolidation, a new
consolidation job, a forget): instead of waiting out the lease, a holder that ``holder.is_gone``
proves dead has its job failed with the reason, and the lease is dropped. ``orgmem jobs retry``
runs a job failed this way again. The caller's transaction holds the job row; nothing commits here.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from orgmem.db.enums import JobStatus
from orgmem.db.models import Job, Org
from orgmem.db.types import utcnow
from orgmem.jobs.holder import clear, holder_of, is_gone
from orgmem.jobs.records import add_event

logger = logging.getLogger(__name__)


def release_if_gone(session: Session, job: Job, *, now: datetime | None = None) -> bool:
    """Fail ``job`` and drop its lease if its holder process is gone; True if it did."""
    holder = holder_of(job)
    if holder is None or not is_gone(holder):
        return False
    error = f"holder process {holder.pid} on {holder.host} is gone"
    owner = job.lease_owner
    if job.status == JobStatus.RUNNING.value:
        job.status = JobStatus.FAILED.value
        job.error = error
    job.finished_at = job.finished_at or now or utcnow()
    clear(job)
    add_event(session, job, f"{error}; lease of worker {owner} released", level="error")
    org = session.get(Org, job.org_id) if job.org_id is not None else None
    logger.warning(
        "lease holder is gone; lease released",
        extra={"org": org.slug if org else None, "job": job.id, "holder": holder.describe(), "worker": owner},
    )
    return True
