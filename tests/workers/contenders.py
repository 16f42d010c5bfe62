"""A claiming worker process for the lease race test (a module of its own, so a spawned child
imports only this, not the test module and its fixtures)."""

from __future__ import annotations

from typing import Any


def contend(index: int, rounds: list[list[str]], barrier: Any, results: Any) -> None:
    """For each round: wait at ``barrier`` for the other contender, then claim ``round[index]``
    for worker ``contender-<index>``; put ``(round, index, won|skipped|refused|error, message)``."""
    from sqlalchemy import text

    from orgmem.db import session_scope
    from orgmem.jobs import LeaseHeldError, claim_job

    with session_scope() as session:  # connect (and import everything) before the race
        session.execute(text("SELECT 1"))
    for number, jobs in enumerate(rounds):
        barrier.wait(timeout=120)
        try:
            with session_scope(write=True) as session:
                claim = claim_job(session, jobs[index], f"contender-{index}", 600)
            results.put((number, index, "won" if claim is not None else "skipped", None))
        except LeaseHeldError as exc:
            results.put((number, index, "refused", str(exc)))
        except Exception as exc:  # reported, so the test shows it instead of hanging
            results.put((number, index, "error", f"{type(exc).__name__}: {exc}"))
