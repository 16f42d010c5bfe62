"""Run one org's night data-parallel over ``nprocs`` local processes and read the result back.

``train_data_parallel`` writes the night's inputs to a private run dir, starts one
``orgmem.engine.dp_worker`` process per rank (the environment ``torchrun --standalone`` would set:
``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT``), forwards rank 0's step
progress to ``on_step`` and returns rank 0's memory, train state and metrics.

Why its own supervisor rather than ``torchrun``: the launcher needs each rank's exit status (code or
signal) to name the rank that failed, structured, not parsed from torchrun's summary; with no
restarts and one node, the rest of torchrun is a port and a few environment variables.

Failure: the first rank that exits non-zero, is killed by a signal, or a timeout, stops every rank
and raises ``DistributedTrainingError`` (retryable: a worker retries the job) naming the rank, its
exit status and its log; nothing of the attempt is used. A rank that stopped on an ``OrgmemError``
(bad input, unsupported recipe) fails the job with that error instead, as in one process.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess  # nosec B404  # our own interpreter and module, no shell
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orgmem
from orgmem.engine.config import ConsolidationConfig
from orgmem.engine.consolidation import ConsolidationResult, StepCallback
from orgmem.engine.distributed import check_supported
from orgmem.engine.dp_worker import EXIT_ORGMEM_ERROR
from orgmem.errors import DistributedTrainingError, OrgmemError

logger = logging.getLogger(__name__)

#: Seconds a rank gets to exit after SIGTERM before it is killed.
STOP_GRACE_S = 5.0


@dataclass(frozen=True)
class RankFailure:
    rank: int
    returncode: int | None  # None: still running when the night timed out

    def describe(self) -> str:
        if self.returncode is None:
            return f"rank {self.rank} still running"
        if self.returncode < 0:
            sig = signal.Signals(-self.returncode).name
            return f"rank {self.rank} killed by signal {-self.returncode} ({sig})"
        return f"rank {self.rank} exited with code {self.returncode}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_inputs(  # noqa: PLR0913  # each rank's inputs, written once to files
    run_dir: Path,
    base_name: str,
    parent_memory: bytes | None,
    parent_train_state: bytes | None,
    new_chunks: Sequence[str],
    replay_chunks: Sequence[str],
    config: ConsolidationConfig,
    underlay: bytes | None,
    log_extra: dict,
) -> None:
    for name, blob in (
        ("parent_memory.bin", parent_memory),
        ("parent_train_state.bin", parent_train_state),
        ("underlay.bin", underlay),
    ):
        if blob is not None:
            (run_dir / name).write_bytes(blob)
    spec = {
        "base": base_name,
        "config": config.to_dict(),
        "new_chunks": list(new_chunks),
        "replay_chunks": list(replay_chunks),
        "log_extra": log_extra,
        "launcher_pid": os.getpid(),
    }
    (run_dir / "inputs.json").write_text(json.dumps(spec))


def _spawn(run_dir: Path, rank: int, nprocs: int, port: int) -> subprocess.Popen:
    # the ranks import the same orgmem as this process, wherever they are started from
    src = str(Path(orgmem.__file__).resolve().parent.parent)
    env = {
        **os.environ,
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "WORLD_SIZE": str(nprocs),
        "LOCAL_WORLD_SIZE": str(nprocs),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p),
    }
    log = (run_dir / "logs" / f"rank{rank}.log").open("wb")
    try:
        return subprocess.Popen(  # nosec B603
            [sys.executable, "-m", "orgmem.engine.dp_worker", str(run_dir)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=run_dir,
        )
    finally:
        log.close()  # the child holds its own descriptor


class _ProgressTail:
    """Forwards the complete lines rank 0 appended to ``progress.jsonl`` since the last call."""

    def __init__(self, path: Path, on_step: StepCallback | None) -> None:
        self.path, self.on_step, self.offset = path, on_step, 0

    def __call__(self) -> None:
        if self.on_step is None or not self.path.exists():
            return
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        for line in data[:end].splitlines():
            step = json.loads(line)
            self.on_step(step["done"], step["total"], step["losses"])


def _supervise(
    procs: list[subprocess.Popen], tail: _ProgressTail, deadline: float | None, poll_s: float
) -> list[RankFailure]:
    """Wait until every rank exited 0 (returns []) or one failed / time ran out (the failures,
    the root cause first: a rank killed by a signal before ranks that errored after losing it)."""
    while True:
        codes = [p.poll() for p in procs]
        tail()
        failed = [RankFailure(r, c) for r, c in enumerate(codes) if c not in (None, 0)]
        if failed:
            return sorted(failed, key=lambda f: ((f.returncode or 0) >= 0, f.rank))
        if all(c == 0 for c in codes):
            return []
        if deadline is not None and time.monotonic() > deadline:
            return [RankFailure(r, None) for r, c in enumerate(codes) if c is None]
        time.sleep(poll_s)


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM every rank still running, then SIGKILL what outlives the grace period."""
    alive = [p for p in procs if p.poll() is None]
    for p in alive:
        p.terminate()
    end = time.monotonic() + STOP_GRACE_S
    for p in alive:
        try:
            p.wait(timeout=max(0.0, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _orgmem_error(run_dir: Path, failures: list[RankFailure]) -> OrgmemError | None:
    """The ``OrgmemError`` a rank stopped on (reported in its error file), if any did."""
    for f in failures:
        path = run_dir / f"error-rank{f.rank}.json"
        if f.returncode == EXIT_ORGMEM_ERROR and path.exists():
            return OrgmemError(json.loads(path.read_text())["message"])
    return None


def _discard_data(run_dir: Path) -> None:
    """Delete the org's material and any partial result; keep the ranks' logs for the operator."""
    for child in run_dir.iterdir():
        if child.name != "logs":
            shutil.rmtree(child) if child.is_dir() else child.unlink()


def train_data_parallel(  # noqa: PLR0913  # the night's inputs, as consolidate takes them
    base_name: str,
    parent_memory: bytes | None,
    parent_train_state: bytes | None,
    new_chunks: Sequence[str],
    replay_chunks: Sequence[str],
    engine_config: ConsolidationConfig | None,
    underlay: bytes | None,
    nprocs: int,
    workdir: Path,
    *,
    on_step: StepCallback | None = None,
    log_extra: dict | None = None,
    timeout_s: float | None = None,
    poll_s: float = 0.2,
) -> ConsolidationResult:
    """``orgmem.engine.consolidate`` over ``nprocs`` data-parallel processes (see module docstring).

    ``workdir``: where the private run dir is made (removed after success; after a failure only
    its ``logs/`` stay). Raises ``DistributedTrainingError`` if any rank fails or ``timeout_s``
    passes; ``on_step`` errors (a cancelled job) stop every rank and propagate.
    """
    config = engine_config or ConsolidationConfig()
    check_supported(config)
    if nprocs < 1:
        raise OrgmemError(f"data-parallel consolidation needs at least 1 process, got {nprocs}")
    t0 = time.time()
    extra = dict(log_extra or {})
    workdir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="consolidate-", dir=workdir))  # 0700: holds the org's text
    (run_dir / "logs").mkdir()
    procs: list[subprocess.Popen] = []
    failures: list[RankFailure] = []
    try:
        _write_inputs(
            run_dir,
            base_name,
            parent_memory,
            parent_train_state,
            new_chunks,
            replay_chunks,
            config,
            underlay,
            extra,
        )
        port = _free_port()
        procs = [_spawn(run_dir, r, nprocs, port) for r in range(nprocs)]
        logger.info(
            "data-parallel consolidation started",
            extra={**extra, "procs": nprocs, "run_dir": str(run_dir), "port": port},
        )
        deadline = time.monotonic() + timeout_s if timeout_s else None
        failures = _supervise(procs, _ProgressTail(run_dir / "progress.jsonl", on_step), deadline, poll_s)
    except BaseException:
        _stop(procs)
        _discard_data(run_dir)
        raise
    _stop(procs)
    out = run_dir / "out"
    if not failures and not (out / "result.json").exists():
        failures = [RankFailure(0, 0)]  # cannot happen unless rank 0's files vanished
    if failures:
        error = _orgmem_error(run_dir, failures)
        _discard_data(run_dir)
        if error is not None:
            raise error
        logs = run_dir / "logs"
        what = "; ".join(f.describe() for f in failures)
        if failures[0].returncode is None:
            what = f"timed out after {timeout_s} s ({what})"
        logger.error(
            "data-parallel consolidation failed", extra={**extra, "failure": what, "logs": str(logs)}
        )
        raise DistributedTrainingError(
            f"data-parallel consolidation over {nprocs} processes failed: {what}; rank logs in {logs}",
            rank=failures[0].rank,
            returncode=failures[0].returncode,
            log_dir=logs,
        )
    summary = json.loads((out / "result.json").read_text())
    result = ConsolidationResult(
        (out / "memory.bin").read_bytes(),
        (out / "train_state.bin").read_bytes(),
        {**summary["metrics"], "procs": nprocs},
        summary["n_tokens"],
        time.time() - t0,
    )
    shutil.rmtree(run_dir)
    logger.info(
        "data-parallel consolidation finished",
        extra={
            **extra,
            "procs": nprocs,
            "seconds": round(result.seconds, 1),
            "steps": result.metrics.get("steps"),
        },
    )
    return result
