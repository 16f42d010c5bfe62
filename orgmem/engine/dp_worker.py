"""One rank of a data-parallel night: ``python -m orgmem.engine.dp_worker <run dir>``.

Started by ``orgmem.engine.launch`` with ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``
and ``MASTER_PORT`` set. Reads the night's inputs from the run dir, joins the process group (gloo on
CPU, NCCL on ``cuda:LOCAL_RANK``), loads the base itself and runs ``consolidate`` with its
``DataParallel``. Rank 0 appends each step to ``progress.jsonl`` and writes the result files last
(``result.json`` marks them complete). An ``OrgmemError`` (bad input, unsupported recipe) is written
to ``error-rank<r>.json`` so the launcher fails the job with its message instead of retrying.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from orgmem.errors import OrgmemError

logger = logging.getLogger(__name__)

#: Exit status of a rank that stopped on an ``OrgmemError`` (its message is in its error file).
EXIT_ORGMEM_ERROR = 3
#: Tests only: this rank SIGKILLs itself after step ``ORGMEM_TEST_DP_KILL_STEP`` (default 1).
KILL_RANK_ENV, KILL_STEP_ENV = "ORGMEM_TEST_DP_KILL_RANK", "ORGMEM_TEST_DP_KILL_STEP"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _optional(run_dir: Path, name: str) -> bytes | None:
    path = run_dir / name
    return path.read_bytes() if path.exists() else None


def _device(local_rank: int) -> tuple[torch.device, str]:
    """``cuda:LOCAL_RANK`` with NCCL when the configured device is CUDA, else the CPU with gloo."""
    from orgmem.models import resolve_device

    device, _ = resolve_device(None)
    if device.type != "cuda":
        return torch.device("cpu"), "gloo"
    if local_rank >= torch.cuda.device_count():
        raise OrgmemError(
            f"rank {local_rank} needs cuda:{local_rank}, this machine has "
            f"{torch.cuda.device_count()} GPU(s): lower ORGMEM_CONSOLIDATE_PROCS"
        )
    device = torch.device("cuda", local_rank)
    torch.cuda.set_device(device)
    return device, "nccl"


def _on_step(run_dir: Path, rank: int, launcher_pid: int):
    """Rank 0 reports progress; every rank stops if its launcher is gone (and, in tests, may die)."""
    progress = (run_dir / "progress.jsonl").open("a") if rank == 0 else None
    kill_step = (
        int(os.environ.get(KILL_STEP_ENV, "1")) if os.environ.get(KILL_RANK_ENV) == str(rank) else None
    )

    def on_step(done: int, total: int, losses: dict[str, float]) -> None:
        if os.getppid() != launcher_pid:
            raise SystemExit(f"rank {rank}: the launcher (pid {launcher_pid}) is gone")
        if kill_step is not None and done >= kill_step:
            os.kill(os.getpid(), signal.SIGKILL)
        if progress is not None:
            progress.write(json.dumps({"done": done, "total": total, "losses": losses}) + "\n")
            progress.flush()

    return on_step


def run(run_dir: Path) -> None:
    from orgmem.engine.config import ConsolidationConfig
    from orgmem.engine.consolidation import consolidate
    from orgmem.engine.distributed import DataParallel, launched_world
    from orgmem.models import load_base

    rank, local_rank, world_size = launched_world()
    spec = json.loads((run_dir / "inputs.json").read_text())
    device, backend = _device(local_rank)
    dist.init_process_group(
        backend,
        init_method="env://",
        rank=rank,
        world_size=world_size,
        timeout=timedelta(seconds=float(spec.get("collective_timeout_s", 1800))),
    )
    try:
        base = load_base(spec["base"], device)
        config = ConsolidationConfig.from_dict(spec["config"])
        if device.type == "cpu" and config.num_threads is None:  # the ranks share the machine's cores
            config = dataclasses.replace(config, num_threads=max(1, (os.cpu_count() or 1) // world_size))
        log_extra = {**spec.get("log_extra", {}), "rank": rank, "world_size": world_size}
        logger.info(
            "data-parallel rank started", extra={**log_extra, "device": str(device), "backend": backend}
        )
        result = consolidate(
            base,
            _optional(run_dir, "parent_memory.bin"),
            spec["new_chunks"],
            spec["replay_chunks"],
            config,
            train_state=_optional(run_dir, "parent_train_state.bin"),
            progress=False,
            log_extra=log_extra,
            underlay=_optional(run_dir, "underlay.bin"),
            on_step=_on_step(run_dir, rank, spec["launcher_pid"]),
            world=DataParallel(rank, world_size),
        )
        if rank == 0:
            out = run_dir / "out"
            out.mkdir(exist_ok=True)
            _atomic_write(out / "memory.bin", result.memory)
            _atomic_write(out / "train_state.bin", result.train_state)
            _atomic_write(
                out / "result.json",
                json.dumps(
                    {"metrics": result.metrics, "n_tokens": result.n_tokens, "seconds": result.seconds}
                ).encode(),
            )
        dist.barrier()  # no rank exits 0 before rank 0's files are complete
    finally:
        dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    from orgmem.config import get_settings
    from orgmem.logs import configure_logging

    args = sys.argv[1:] if argv is None else argv
    run_dir = Path(args[0])
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    try:
        run(run_dir)
    except OrgmemError as exc:
        rank = os.environ.get("RANK", "?")
        _atomic_write(
            run_dir / f"error-rank{rank}.json",
            json.dumps({"type": type(exc).__name__, "message": str(exc)}).encode(),
        )
        logger.error("data-parallel rank failed", extra={"rank": rank, "error": str(exc)})
        return EXIT_ORGMEM_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
