"""``orgmem worker --queues ingest,consolidate``: run a Celery worker in this process."""

from __future__ import annotations

from typing import Annotated

import typer


def command(
    queues: Annotated[str, typer.Option("--queues", "-Q", help="Comma-separated: ingest, consolidate.")] = (
        "ingest,consolidate"
    ),
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-c", min=1, help="Parallel tasks.")
    ] = None,
    pool: Annotated[
        str | None, typer.Option("--pool", help="solo | prefork | threads (default by queue).")
    ] = None,
    loglevel: Annotated[str, typer.Option("--loglevel", help="Worker log level.")] = "INFO",
) -> None:
    """Run jobs from the queues until stopped (SIGTERM finishes the current task first)."""
    from orgmem.cli.common import db_session
    from orgmem.config import get_settings
    from orgmem.logs import configure_logging
    from workers.worker import parse_queues, start_worker

    names = parse_queues(queues)
    with db_session():
        pass  # a worker on an unmigrated database would fail every job: refuse at start
    settings = get_settings()
    configure_logging(loglevel, as_json=settings.log_json)
    start_worker(names, concurrency=concurrency, pool=pool, loglevel=loglevel)
