"""The continual benchmark's quick path on the tiny base: nights of a generated org go through the
real sync → consolidate → gate → promote chain, per replay policy, and every night is measured."""

from __future__ import annotations

import json

from benchmarks import continual


def test_quick_run_measures_every_night_per_policy(tmp_path):
    out = tmp_path / "results"
    argv = ["--base", "tiny-random", "--quick", "--nights", "2", "--policies", "budget,none",
            "--out", str(out), "--work", str(tmp_path / "work"), "--no-baselines"]  # fmt: skip
    assert continual.main(argv) == 0
    data = json.loads((out / "continual.json").read_text())
    runs = {r["policy"]: r for r in data["runs"]}
    assert set(runs) == {"budget", "none"} and all(len(r["nights"]) == 2 for r in runs.values())
    for run in runs.values():
        first, second = run["nights"]
        assert first["sync_status"] == second["sync_status"] == "succeeded"
        assert first["failed_sources"] == [] and first["checkpoint_id"]
        assert first["n_replay_chunks"] == 0, "nothing older to replay on the first night"
        assert set(second["retention"]) == {"1", "2"}, "night-1 facts are asked again after night 2"
        assert second["n_updates_asked"] >= 1 and second["deleted_paths"], "updates and a deletion happened"
        assert second["replies_changed"] is not None and second["ppl_ratio"] is not None
        assert second["new_tokens"] > 0 and second["train_tokens"] > 0
    budget_night2 = runs["budget"]["nights"][1]
    assert budget_night2["n_replay_chunks"] > 0 and budget_night2["replay_tokens"] > 0
    assert runs["none"]["nights"][1]["n_replay_chunks"] == 0
    table = (out / "continual.md").read_text()
    assert "| budget |" in table and "| none |" in table and "question recall of each night" in table
