"""A night data-parallel over two CPU processes (gloo) equals one process; a dying rank fails cleanly.

Measured on the tiny base (``_cfg``, 5-6 steps): the largest difference of any memory tensor was
1.7e-7 absolute on one machine and 1.07e-6 on another with the same code and packages, 1.3e-5
relative to that tensor's largest value on both (rounding: rows are packed differently and
gradients summed in another order, then AdamW's normalisation amplifies it; how much depends on the
CPU's kernels). The tolerances below are ``ATOL = 1e-5`` and ``RTOL = 1e-4``; another seed differs
by ~1e-2, a thousand times more.
"""

from __future__ import annotations

import pytest
from safetensors.torch import load as st_load

from orgmem.engine.config import ConsolidationConfig
from orgmem.engine.consolidation import Consolidator, consolidate
from orgmem.engine.distributed import DataParallel
from orgmem.engine.dp_worker import KILL_RANK_ENV, KILL_STEP_ENV
from orgmem.engine.launch import train_data_parallel
from orgmem.errors import DistributedTrainingError, OrgmemError
from orgmem.jobs.runner import TRANSIENT_ERRORS
from tests.engine.samples import NIGHT1, small_config

NIGHT2 = ["[09:14] marit: The VPN endpoint is vpn2.kestrel.ee\n"]
ATOL, RTOL = 1e-5, 1e-4


def _cfg(**kw) -> ConsolidationConfig:
    return small_config(**{"max_steps": 6, **kw})


def _diff(a: bytes, b: bytes) -> tuple[float, float]:
    """Largest absolute and largest per-tensor relative difference over every tensor of two files."""
    ta, tb = st_load(a), st_load(b)
    assert ta.keys() == tb.keys()
    worst_abs = worst_rel = 0.0
    for k in ta:
        d = (ta[k].double() - tb[k].double()).abs().max().item()
        worst_abs = max(worst_abs, d)
        worst_rel = max(worst_rel, d / max(ta[k].double().abs().max().item(), 1e-12))
    return worst_abs, worst_rel


def _assert_close(one, two) -> None:
    for name, a, b in (("memory", one.memory, two.memory), ("train state", one.train_state, two.train_state)):
        worst_abs, worst_rel = _diff(a, b)
        assert worst_abs <= ATOL and worst_rel <= RTOL, f"{name}: abs {worst_abs:.2e}, rel {worst_rel:.2e}"
    for key in ("steps", "tokens", "global_step", "consolidations", "items", "replay_items"):
        assert one.metrics[key] == two.metrics[key], key
    for key in ("loss_first", "loss_last", "kl_last", "cms.gate_sparsity_last"):
        assert two.metrics[key] == pytest.approx(one.metrics[key], abs=1e-4), key


def test_two_processes_equal_one_and_the_train_state_continues(base, tmp_path):
    cfg = _cfg()
    seen: list[tuple[int, int]] = []
    one = consolidate(base, None, NIGHT1, [], cfg, progress=False)
    two = train_data_parallel(
        "tiny-random",
        None,
        None,
        NIGHT1,
        [],
        cfg,
        None,
        2,
        tmp_path,
        on_step=lambda d, n, _: seen.append((d, n)),
    )
    _assert_close(one, two)
    assert two.metrics["procs"] == 2
    assert seen == [(i, one.metrics["steps"]) for i in range(1, one.metrics["steps"] + 1)], (
        "rank 0's progress"
    )
    assert not list(tmp_path.iterdir()), "the run dir is removed after a success"
    assert (
        _diff(one.memory, consolidate(base, None, NIGHT1, [], _cfg(seed=1), progress=False).memory)[0] > 1e-4
    )

    # night 2 resumes from the 2-process night's bytes exactly as from the single process's
    one2 = consolidate(base, one.memory, NIGHT2, NIGHT1, cfg, train_state=one.train_state, progress=False)
    two2 = train_data_parallel(
        "tiny-random", two.memory, two.train_state, NIGHT2, NIGHT1, cfg, None, 2, tmp_path
    )
    _assert_close(one2, two2)
    assert two2.metrics["consolidations"] == 2


@pytest.mark.parametrize(
    "rehearsal_per_step, scope",
    [(0, "all"), (1, "rehearsal")],
    ids=["a-rank-with-nothing-joins-at-weight-0", "a-rank-with-rehearsal-only"],
)
def test_steps_with_fewer_items_than_ranks(base, tmp_path, rehearsal_per_step, scope):
    """One material item per step: rank 1 trains no material (only the rehearsal, or nothing)."""
    cfg = _cfg(tokens_per_step=16, rehearsal_per_step=rehearsal_per_step, sparsity_scope=scope, max_steps=5)
    one = consolidate(base, None, NIGHT1, [], cfg, progress=False)
    _assert_close(one, train_data_parallel("tiny-random", None, None, NIGHT1, [], cfg, None, 2, tmp_path))


def test_a_killed_rank_fails_the_night_retryably_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(KILL_RANK_ENV, "1")
    monkeypatch.setenv(KILL_STEP_ENV, "2")
    with pytest.raises(DistributedTrainingError, match=r"rank 1 killed by signal 9 \(SIGKILL\)") as caught:
        train_data_parallel("tiny-random", None, None, NIGHT1, [], _cfg(), None, 2, tmp_path)
    err = caught.value
    assert err.rank == 1 and err.returncode == -9 and isinstance(err, TRANSIENT_ERRORS)
    (run_dir,) = tmp_path.iterdir()
    assert [p.name for p in run_dir.iterdir()] == ["logs"], "inputs and any partial result are deleted"
    assert str(err.log_dir) in str(err) and (err.log_dir / "rank1.log").exists()


def test_a_ranks_orgmem_error_fails_without_retry(tmp_path):
    with pytest.raises(OrgmemError, match="nothing to consolidate") as caught:
        train_data_parallel("tiny-random", None, None, ["   "], [], _cfg(), None, 2, tmp_path)
    assert not isinstance(caught.value, TRANSIENT_ERRORS)


def test_unsupported_recipes_are_refused_before_any_process_starts(base, tmp_path):
    for cfg, what in (
        (_cfg(curriculum=True), "curriculum"),
        (_cfg(context_distill=1.0), "context distillation"),
    ):
        with pytest.raises(OrgmemError, match=what):
            train_data_parallel("tiny-random", None, None, NIGHT1, [], cfg, None, 2, tmp_path)
    assert not list(tmp_path.iterdir())
    with pytest.raises(OrgmemError, match="titans"):  # its forward-pass writes would see one shard
        Consolidator(base, None, _cfg(memory="cms+titans"), world=DataParallel(0, 2))
