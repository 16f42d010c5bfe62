"""The job and schedule commands in-process (typer's runner): output shapes and bad-input paths."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from orgmem.cli.main import app
from tests.pipeline.conftest import NIGHT1, add_chunks

runner = CliRunner()


def cli(*args: str, code: int = 0):
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout) if code == 0 and "--json" in args else result


def test_consolidate_inline_jobs_and_job_show(org, monkeypatch):
    monkeypatch.setenv("ORGMEM_BASE_MODEL", "tiny-random")
    from orgmem.config import get_settings

    get_settings.cache_clear()
    add_chunks(org, NIGHT1)
    engine = '{"epochs": 1, "max_steps": 2, "num_threads": 1}'
    view = cli(
        "consolidate", "acme", "--inline", "--engine", engine, "--pipeline", '{"progress": false}', "--json"
    )
    assert view["status"] == "succeeded" and view["result"]["status"] == "promoted"
    listed = cli("jobs", "acme", "--json")
    assert [j["id"] for j in listed] == [view["id"]]
    text = cli("jobs", "show", view["id"]).stdout
    assert f"checkpoint {view['result']['checkpoint_id']} promoted" in text and "events:" in text
    nothing = cli("consolidate", "acme", "--inline")
    assert "nothing pending" in nothing.stdout


def test_bad_input_is_named_with_an_exit_code(org):
    assert "job 'jb_nope' not found" in cli("jobs", "show", "jb_nope", code=2).stderr
    assert "org 'nope' not found" in cli("consolidate", "nope", code=2).stderr
    assert "--engine must be a JSON object" in cli("consolidate", "acme", "--engine", "[1]", code=1).stderr
    assert "--engine is not valid JSON" in cli("consolidate", "acme", "--engine", "{", code=1).stderr
    assert "--status 'weird' is not one of" in cli("jobs", "acme", "--status", "weird", code=1).stderr
    assert "invalid cron expression" in cli("schedule", "acme", "--cron", "61 2 * * *", code=1).stderr
    assert (
        "unknown time zone 'Oslo'"
        in cli("schedule", "acme", "--cron", "0 2 * * *", "--tz", "Oslo", code=1).stderr
    )
    assert "either --cron or --off" in cli("schedule", "acme", "--cron", "0 2 * * *", "--off", code=1).stderr
    assert "has no schedule to turn off" in cli("schedule", "acme", "--off", code=2).stderr
    assert cli("jobs", "acme", "--json") == [], "refused commands created no job"


def test_queue_cancel_retry_and_schedule_commands(org):
    queued = cli("consolidate", "acme", "--json")
    assert queued["status"] == "queued"
    again = cli("consolidate", "acme", code=3)
    assert f"already has consolidation job '{queued['job']}'" in again.stderr
    assert cli("jobs", "cancel", queued["job"], "--json")["status"] == "cancelled"
    assert "already cancelled" in cli("jobs", "cancel", queued["job"], code=3).stderr
    assert cli("jobs", "retry", queued["job"], "--json")["status"] == "queued"
    view = cli("schedule", "acme", "--cron", "0 2 * * *", "--tz", "Europe/Oslo", "--json")
    assert view["timezone"] == "Europe/Oslo" and view["next_run"]
    assert [v["org"] for v in cli("schedule", "list", "--json")] == ["acme"]
    assert cli("schedule", "acme", "--off", "--json")["enabled"] is False
    assert "acme" in cli("schedule", "list").stdout
