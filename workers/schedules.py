"""The scheduled job of an org's nightly loop, as the scheduler process runs it.

What a schedule is and where it is kept lives in ``orgmem.ops.schedules`` (the CLI and the API
set it there); the stored APScheduler job names ``run_nightly`` here (``NIGHTLY_FUNC``), which
sends the night's sync to the workers' queue.
"""

from __future__ import annotations

import logging

from orgmem.errors import OrgmemError
from orgmem.ops.jobs import submit_sync
from workers.queue import CeleryJobQueue

logger = logging.getLogger(__name__)


def run_nightly(org_slug: str) -> str | None:
    """The scheduled job: sync every source, then consolidate (chained by the sync task)."""
    try:
        job_id = submit_sync(org_slug, actor="scheduler", then_consolidate=True, queue=CeleryJobQueue())
    except OrgmemError as exc:
        logger.error("nightly run not started", extra={"org": org_slug, "error": str(exc)})
        return None
    logger.info("nightly run started", extra={"org": org_slug, "job": job_id})
    return job_id
