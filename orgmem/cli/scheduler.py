"""``orgmem scheduler``: run the nightly schedules (and stale-job recovery) until stopped."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer


def command(loglevel: Annotated[str, typer.Option("--loglevel", help="Log level.")] = "INFO") -> None:
    """Fire each org's nightly loop on time; re-queue jobs of dead workers."""
    from orgmem.cli.common import db_session
    from orgmem.config import get_settings
    from orgmem.logs import configure_logging
    from workers.scheduler import run_scheduler

    with db_session():
        pass
    configure_logging(loglevel, as_json=get_settings().log_json)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    scheduler = run_scheduler()
    typer.echo(
        f"scheduler running: {', '.join(j.id for j in scheduler.get_jobs()) or 'no jobs yet'}", err=True
    )
    try:
        stop.wait()
    finally:
        scheduler.shutdown(wait=True)
    typer.echo("scheduler stopped", err=True)
