"""Start and stop real ``orgmem worker`` / ``orgmem`` CLI processes for tests (by PID only)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from orgmem.db import session_scope
from orgmem.jobs import get_job, job_dict


def orgmem_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "orgmem.cli.main", *args]


def run_cli(
    *args: str, env: dict[str, str] | None = None, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess:
    done = subprocess.run(
        orgmem_cmd(*args), env=env or dict(os.environ), capture_output=True, text=True, timeout=timeout
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"orgmem {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done


def cli_json(*args: str, env: dict[str, str] | None = None):
    return json.loads(run_cli(*args, "--json", env=env).stdout)


class Worker:
    """One ``orgmem worker`` process with its log in a file."""

    def __init__(
        self, log: Path, env: dict[str, str] | None = None, queues: str = "ingest,consolidate"
    ) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            orgmem_cmd("worker", "--queues", queues, "--loglevel", "INFO"),
            env=env or dict(os.environ),
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 60) -> None:
        wait_until(
            lambda: "ready." in self.log.read_text(errors="replace") or self.proc.poll() is not None,
            timeout,
            f"worker {self.pid} ready",
        )
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")

    def kill9(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, *, idle: bool = False) -> None:
        """SIGTERM (warm shutdown, ~5 s in Celery) or, for a worker known to be idle, SIGKILL."""
        if idle and self.proc.poll() is None:
            self.kill9()
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


def exited_pid() -> int:
    """The pid of a process that has exited and been reaped: a lease holder that is gone."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, poll: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def job_view(job_id: str) -> dict:
    with session_scope() as session:
        return job_dict(session, get_job(session, job_id), events=True)


def wait_job(job_id: str, timeout: float, statuses=("succeeded", "failed", "cancelled")) -> dict:
    wait_until(lambda: job_view(job_id)["status"] in statuses, timeout, f"job {job_id} to reach {statuses}")
    return job_view(job_id)


def wait_training(job_id: str, timeout: float) -> None:
    """Until the job's log says training began: the moment a kill leaves the most half-done."""
    wait_until(
        lambda: any("training on base" in e["message"] for e in job_view(job_id)["events"]),
        timeout,
        "training to start",
    )


def retry_on_new_worker(log: Path, env: dict[str, str], job_id: str, timeout: str, **worker: str) -> dict:
    """After the first worker was killed mid-job: a second one takes the job over once its lease
    expires and finishes it. Asserts the retry (attempt 2) promoted; returns ``jobs wait``'s view."""
    second = Worker(log, env, **worker)
    try:
        done = cli_json("jobs", "wait", job_id, "--timeout", timeout)
    finally:
        second.stop(idle=True)
    assert done["status"] == "succeeded", done["error"]
    assert done["attempts"] == 2 and done["result"]["status"] == "promoted"
    return done
