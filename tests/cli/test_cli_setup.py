"""init, config, db, store gc, the command surface, and how errors reach the user."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import event
from typer.testing import CliRunner

from orgmem.cli.main import app
from orgmem.db.models import Checkpoint
from orgmem.db.session import session_factory
from orgmem.lineage import get_org
from orgmem.store.base import ObjectStore
from tests.lineage_factories import add_chunks, record

runner = CliRunner()
RESERVED = {
    "source": 4,
    "sync": 5,
    "consolidate": 5,
    "jobs": 5,
    "schedule": 5,
    "forget": 5,
    "keys": 6,
    "serve": 6,
    "worker": 5,
    "scheduler": 5,
    "eval": 3,
    "memory": 3,
    "demo": 5,
    "model": 3,
}
#: Older spellings kept for scripts: they work, but help lists only the one noun (``jobs``, ``receipts``).
HIDDEN_ALIASES = {"job": "jobs", "receipt": "receipts"}
OWN = [
    "init",
    "config",
    "org",
    "checkpoints",
    "checkpoint",
    "pin",
    "unpin",
    "rollback",
    "history",
    "store",
    "db",
]


def invoke(*args: str, code: int = 0):
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return result


def test_help_lists_every_command() -> None:
    listed = set(re.findall(r"^│ (\w[\w-]*)\s", invoke("--help").stdout, flags=re.M))
    assert set(OWN) | set(RESERVED) <= listed


def test_one_verb_per_noun_and_the_old_spellings_still_work() -> None:
    listed = set(re.findall(r"^│ (\w[\w-]*)\s", invoke("--help").stdout, flags=re.M))
    assert {"jobs", "receipts"} <= listed and not set(HIDDEN_ALIASES) & listed
    for alias, noun in HIDDEN_ALIASES.items():
        verbs = set(re.findall(r"^│ (\w+)\s", invoke(noun, "--help").stdout, flags=re.M))
        assert {"list", "show"} <= verbs
        assert set(re.findall(r"^│ (\w+)\s", invoke(alias, "--help").stdout, flags=re.M)) == verbs
    assert "Org slug" in invoke("jobs", "acme", "--help").stdout, "`orgmem jobs ORG` still means `jobs list`"


@pytest.mark.parametrize("name", sorted(RESERVED))
def test_reserved_commands_say_which_issue(name: str) -> None:
    """Until its issue replaces the module, each reserved command names that issue and exits 2."""
    command = getattr(importlib.import_module(f"orgmem.cli.{name}"), "command", None)
    if command is None or "arrives with issue" not in (command.__doc__ or ""):
        invoke(name, "--help")  # replaced by its owner: it must at least mount and show help
        return
    result = invoke(name, "some", "--args", code=2)
    assert result.stderr.strip() == f"`orgmem {name}` arrives with issue #{RESERVED[name]}"


def test_init_creates_everything_and_is_repeatable(empty_db_url: str, tmp_path: Path) -> None:
    home = Path(os.environ["ORGMEM_HOME"])
    data = json.loads(invoke("init", "--json").stdout)
    assert data["revision"] and Path(data["home"]) == home and (home / "store").is_dir()
    assert json.loads(invoke("db", "current", "--json").stdout)["revision"] == data["revision"]
    assert json.loads(invoke("init", "--json").stdout)["revision"] == data["revision"]
    assert json.loads(invoke("db", "check", "--json").stdout)["drift"] is False


def test_db_round_trip_through_cli(empty_db_url: str) -> None:
    invoke("db", "upgrade")
    invoke("org", "create", "acme")
    assert json.loads(invoke("db", "downgrade", "base", "--json").stdout) == {"revision": None}
    result = invoke("org", "list", code=1)
    assert "no orgmem schema: run `orgmem init`" in result.stderr
    invoke("db", "upgrade")
    assert json.loads(invoke("org", "list", "--json").stdout) == []


def test_config_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from orgmem.config import get_settings

    monkeypatch.setenv("ORGMEM_DATABASE_URL", "postgresql+psycopg://orgmem:hunter2@db.example:5432/orgmem")
    monkeypatch.setenv("ORGMEM_S3_SECRET_ACCESS_KEY", "very-secret")
    get_settings.cache_clear()
    result = invoke("config", "--json")
    data = json.loads(result.stdout)
    assert data["database_url"] == "postgresql+psycopg://orgmem:********@db.example:5432/orgmem"
    assert data["s3_secret_access_key"] == "********"
    assert "hunter2" not in result.output and "very-secret" not in invoke("config").output


def test_store_gc_removes_orphans_of_a_failed_commit(db_url: str, store: ObjectStore) -> None:
    invoke("org", "create", "acme")
    session = session_factory(db_url)()
    org = get_org(session, "acme")
    kept = [o.key for o in record(session, store, org, None, add_chunks(session, org, ["a"])).objects]

    def fail(sess, ctx) -> None:
        if any(isinstance(obj, Checkpoint) for obj in sess.new):
            raise RuntimeError("injected")

    event.listen(session, "after_flush", fail)
    with pytest.raises(RuntimeError):
        record(session, store, org, None, add_chunks(session, org, ["b"]))
    session.close()
    assert json.loads(invoke("store", "gc", "--json").stdout)["removed"] == []  # within the 1 h grace
    dry = json.loads(invoke("store", "gc", "--grace", "0", "--dry-run", "--json").stdout)
    assert len(dry["removed"]) == 3 and all(store.exists(k) for k in dry["removed"])
    done = json.loads(invoke("store", "gc", "--grace", "0", "--json").stdout)
    assert done["removed"] == dry["removed"] and not any(store.exists(k) for k in done["removed"])
    assert all(store.exists(key) for key in kept)
    assert "not a duration" in invoke("store", "gc", "--grace", "soon", code=2).stderr


def test_console_script_reports_user_errors_without_traceback(tmp_path: Path) -> None:
    """The installed entry point, as a user runs it: message on stderr, exit code, no traceback."""
    env = {**os.environ, "ORGMEM_HOME": str(tmp_path / "home")}
    orgmem = [sys.executable, "-c", "from orgmem.cli.main import app; app()"]
    init = subprocess.run([*orgmem, "init"], env=env, capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    missing = subprocess.run(
        [*orgmem, "pin", "ghost", "ck_000000000000"], env=env, capture_output=True, text=True
    )
    assert missing.returncode == 2
    assert missing.stderr.strip() == "error: org 'ghost' not found (see `orgmem org list`)"
