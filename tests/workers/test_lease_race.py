"""Two worker processes claim the same org at the same moment: exactly one wins, the other gets a
refusal that names the winner. On SQLite and on PostgreSQL (``ORGMEM_TEST_DATABASE_URL``, see
tests/fixtures_db.py), where the org row lock is what serialises the claims.

Each round starts both claims from a barrier. Rounds of three kinds: two jobs of one org; one job
delivered twice; two jobs of an org whose lease holder died on this machine (exactly one of them
releases it and wins).
"""

from __future__ import annotations

import multiprocessing
import queue
from dataclasses import replace

from sqlalchemy import select

from orgmem.db import session_scope
from orgmem.db.models import JobEvent
from orgmem.jobs import claim_job, create_job, get_job, this_process
from orgmem.lineage import create_org
from tests.fixtures_db import db_backend, db_url  # noqa: F401
from tests.workers.contenders import contend
from tests.workers.procs import exited_pid

ROUNDS = {"two_jobs": 5, "same_job": 3, "dead_holder": 3}


def _plan() -> list[tuple[str, list[str], str | None]]:
    """(kind, [job of contender 0, job of contender 1], dead holder's job) per round, one org each."""
    me = this_process()
    plan = []
    with session_scope(write=True) as s:
        for kind, count in ROUNDS.items():
            for n in range(count):
                org = create_org(s, f"race-{kind.replace('_', '-')}-{n}", "Race", actor="test")
                a, b = (create_job(s, org, "consolidate").id for _ in range(2))
                dead = create_job(s, org, "consolidate").id if kind == "dead_holder" else None
                plan.append((kind, [a, a] if kind == "same_job" else [a, b], dead))
    for _, _, dead in plan:
        if dead is not None:  # held for 600 s by a process that has exited
            with session_scope(write=True) as s:
                claim_job(s, dead, "killed", 600, holder=replace(me, pid=exited_pid()))
    return plan


def _race(rounds: list[list[str]]) -> dict[int, list[tuple]]:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=contend, args=(i, rounds, barrier, results)) for i in range(2)]
    for p in procs:
        p.start()
    got: dict[int, list[tuple]] = {}
    try:
        for _ in range(2 * len(rounds)):
            number, index, outcome, message = results.get(timeout=180)
            got.setdefault(number, []).append((index, outcome, message))
    except queue.Empty:
        raise AssertionError(f"contenders stopped reporting; so far {got}") from None
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    assert [p.exitcode for p in procs] == [0, 0]
    return got


def test_two_processes_claim_one_org_at_once_exactly_one_wins(db_url):  # noqa: F811
    plan = _plan()
    got = _race([jobs for _, jobs, _ in plan])
    for number, (kind, jobs, dead) in enumerate(plan):
        outcomes = sorted(got[number], key=lambda r: r[1])
        assert not [r for r in outcomes if r[1] == "error"], outcomes
        loser, winner = outcomes
        expected = "skipped" if kind == "same_job" else "refused"
        assert (winner[1], loser[1]) == ("won", expected), (kind, outcomes)
        won_job = jobs[winner[0]]
        with session_scope() as s:
            job = get_job(s, won_job)
            assert job.status == "running" and job.lease_owner == f"contender-{winner[0]}"
            assert job.attempts == 1, "claimed once, even when delivered twice"
            if kind != "same_job":
                assert get_job(s, jobs[loser[0]]).status == "queued", "a refused claim changes nothing"
                assert f"by job '{won_job}'" in loser[2] and f"`orgmem jobs cancel {won_job}`" in loser[2]
            if dead is not None:
                gone = get_job(s, dead)
                assert gone.status == "failed" and gone.lease_owner is None
                assert gone.error.startswith("holder process ") and gone.error.endswith(" is gone")
                released = s.scalars(
                    select(JobEvent).where(JobEvent.job_id == dead, JobEvent.message.like("holder process%"))
                )
                assert len(list(released)) == 1, "released by exactly one of the two"
