"""``orgmem memory meta-train`` (the Titans command group, run stand-alone on the tiny base)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from orgmem.cli.memory_titans import app
from orgmem.config import get_settings
from orgmem.errors import ConflictError

ARGS = ["meta-train", "--base", "tiny-random", "--device", "cpu", "--batch-size", "2", "--bank-size", "4",
        "--eval-episodes", "4", "--threads", "1", "--curriculum-tokens", "64,128", "--curriculum-steps", "2",
        "--curriculum-batch", "2,2", "--window-tokens", "32", "--generic-items", "2"]


@pytest.fixture(autouse=True)
def _private_models_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ORGMEM_MODELS_DIR", str(tmp_path / "models"))
    get_settings.cache_clear()


def test_meta_train_command_runs_resumes_and_refuses_to_overwrite(tmp_path):
    runner = CliRunner()
    first = runner.invoke(app, [*ARGS, "--steps", "2"])
    assert first.exit_code == 0, first.output
    assert "complete" in first.output and "tiny-random/titans_meta/init.safetensors" in first.output
    assert "gap" in first.output
    again = runner.invoke(app, [*ARGS, "--steps", "3"])
    assert isinstance(again.exception, ConflictError) and "--resume" in str(again.exception)
    resumed = runner.invoke(app, [*ARGS, "--steps", "3", "--resume", "--json"])
    assert resumed.exit_code == 0, resumed.output
    assert '"steps": 3' in resumed.output and '"complete": true' in resumed.output


def test_a_curriculum_that_does_not_add_up_is_refused_before_loading_the_base():
    args = ["meta-train", "--base", "no-such-base", "--curriculum-tokens", "64,128,256",
            "--curriculum-steps", "5"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "curriculum_steps" in result.output
