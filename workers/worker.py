"""Start a Celery worker for orgmem's queues (``orgmem worker``).

A worker that serves ``consolidate`` runs its tasks in the worker process itself (``solo`` pool,
one task at a time): one GPU, one model in memory, and killing the worker process really stops
the training it was doing (its lease then expires and another worker takes the job over).
An ingest-only worker uses a process pool for parallel syncs.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence

from orgmem.errors import OrgmemError
from workers.app import CONSOLIDATE_QUEUE, QUEUES, get_app
from workers.queue import install_celery_queue

logger = logging.getLogger(__name__)


def parse_queues(text: str | Sequence[str]) -> list[str]:
    names = [q.strip() for q in (text.split(",") if isinstance(text, str) else text) if q.strip()]
    unknown = sorted(set(names) - set(QUEUES))
    if not names or unknown:
        raise OrgmemError(f"unknown queue(s) {unknown or names!r}: orgmem's queues are {', '.join(QUEUES)}")
    return list(dict.fromkeys(names))


def worker_argv(
    queues: Sequence[str],
    *,
    concurrency: int | None = None,
    pool: str | None = None,
    loglevel: str = "INFO",
    name: str | None = None,
) -> list[str]:
    """Arguments for ``celery worker`` (kept separate so they can be checked without a broker)."""
    consolidates = CONSOLIDATE_QUEUE in queues
    pool = pool or ("solo" if consolidates else "prefork")
    if consolidates and pool != "solo" and (concurrency or 1) != 1:
        raise OrgmemError("a worker serving the consolidate queue runs one task at a time (concurrency 1)")
    argv = [
        "worker",
        "-Q",
        ",".join(queues),
        "--pool",
        pool,
        "--loglevel",
        loglevel,
        "-n",
        name or f"orgmem-{'-'.join(queues)}-{socket.gethostname()}@%h",
        "--without-gossip",
        "--without-mingle",
    ]
    if pool != "solo":
        argv += ["--concurrency", str(concurrency or (1 if consolidates else 2))]
    return argv


def start_worker(queues: Sequence[str], **options: object) -> None:
    """Run a worker in this process until it is stopped (SIGTERM: warm shutdown)."""
    argv = worker_argv(queues, **options)  # type: ignore[arg-type]
    logger.info("starting worker", extra={"argv": " ".join(argv)})
    install_celery_queue()
    get_app().worker_main(argv=argv)
