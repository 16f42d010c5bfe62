"""Bring back jobs whose worker died: expired leases are re-queued and their messages re-sent.

Brokers differ in what survives a killed worker (the filesystem broker hands a message out once;
Redis re-delivers only after its visibility timeout), so orgmem does not rely on the broker:
every worker runs a small loop that re-queues jobs whose lease expired. A duplicate delivery is
harmless, because a job is only run by the worker that claims its lease, and a finished job is
never run again.
"""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_ready, worker_shutdown

from orgmem.db.session import session_scope
from orgmem.jobs import get_job_settings, recover_stale_jobs
from workers.queue import CeleryJobQueue

logger = logging.getLogger(__name__)

_loop: RecoveryLoop | None = None


def recover_once() -> list[str]:
    """Re-queue and re-send every job whose lease expired; returns their ids."""
    with session_scope(write=True) as session:
        job_ids = recover_stale_jobs(session, get_job_settings().max_attempts)
    queue = CeleryJobQueue()
    for job_id in job_ids:
        queue.send(job_id)
    return job_ids


class RecoveryLoop(threading.Thread):
    """Runs ``recover_once`` at start and then every ``interval`` seconds until stopped."""

    def __init__(self, interval: float) -> None:
        super().__init__(name="orgmem-recovery", daemon=True)
        self.interval = interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        while True:
            try:
                recovered = recover_once()
                if recovered:
                    logger.warning("re-queued jobs of dead workers", extra={"jobs": recovered})
            except Exception:
                logger.exception("stale-job recovery failed; will try again")
            if self._stop_event.wait(self.interval):
                return

    def stop(self) -> None:
        self._stop_event.set()


@worker_ready.connect
def _start_recovery(**_: object) -> None:
    global _loop
    if _loop is None:
        _loop = RecoveryLoop(get_job_settings().recover_interval_seconds)
        _loop.start()


@worker_shutdown.connect
def _stop_recovery(**_: object) -> None:
    if _loop is not None:
        _loop.stop()
