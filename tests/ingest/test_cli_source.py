"""``orgmem source add|list|remove`` and ``orgmem sync --inline`` end to end through the CLI."""

from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from orgmem.cli.main import app
from tests.connectors.source_builders import PLANTED, make_docs_folder, make_git_repo

runner = CliRunner()


def cli(*args: str, code: int = 0):
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout) if code in (0, 1) and "--json" in args else result


def test_source_lifecycle_and_inline_sync(db_url, tmp_path):
    repo = make_git_repo(tmp_path)
    docs = make_docs_folder(tmp_path)
    cli("org", "create", "acme")
    added = cli(
        "source",
        "add",
        "acme",
        "git",
        "--name",
        "code",
        "--path",
        str(repo),
        "--max-file-bytes",
        "3000",
        "--json",
    )
    assert added["config"] == {"path": str(repo), "max_file_bytes": 3000} and added["audience"] == "org"
    cli("source", "add", "acme", "docs", "--config", json.dumps({"path": str(docs)}), "--audience", "staff")

    out = cli("sync", "acme", "--inline", "--no-progress", "--json")
    by_source = {s["source"]: s for s in out["sources"]}
    assert by_source["code"]["new_versions"] == 6 and by_source["docs"]["new_versions"] == 4
    assert out["job"].startswith("jb_")
    listed = {s["name"]: s for s in cli("source", "list", "acme", "--json")}
    assert listed["code"]["documents"] == 6 and listed["code"]["pending"] > 0
    assert "broken.pdf" in listed["docs"]["last_error"]

    again = cli("sync", "acme", "--source", "code", "--inline", "--no-progress", "--json")
    assert [s["new_versions"] for s in again["sources"]] == [0]

    from sqlalchemy import select

    from orgmem.db import models as m
    from orgmem.db.session import session_factory

    with session_factory(db_url)() as session:
        assert not any(s in t for t in session.scalars(select(m.Chunk.text)) for s in PLANTED)
        job = session.get(m.Job, out["job"])
        assert job.status == "succeeded" and job.result["sources"][0]["source"] in ("code", "docs")

    cli("source", "remove", "acme", "docs")
    assert [s["name"] for s in cli("source", "list", "acme", "--json")] == ["code"]


def test_bad_input_messages_and_exit_codes(db_url, tmp_path):
    cli("org", "create", "acme")
    bad = cli("source", "add", "acme", "git", "--name", "x", code=6)
    assert "invalid git source config" in bad.stderr and "exactly one of 'path'" in bad.stderr
    bad = cli("source", "add", "acme", "docs", "--path", str(tmp_path), "--zip", "a.zip", code=6)
    assert "field 'zip'" in bad.stderr
    assert "not valid JSON" in cli("source", "add", "acme", "docs", "--config", "{nope", code=2).stderr
    assert "unknown source kind 'ftp'" in cli("source", "add", "acme", "ftp", code=6).stderr
    # a source that cannot sync is refused at add time (issue 14, finding 5) ...
    gone = cli("source", "add", "acme", "git", "--path", str(tmp_path / "gone"), code=7)
    assert "git source 'git' of org 'acme'" in gone.stderr and "does not exist" in gone.stderr
    repo = make_git_repo(tmp_path)
    cli("source", "add", "acme", "git", "--path", str(repo))
    assert (
        "already has a source named 'git'"
        in cli("source", "add", "acme", "git", "--path", "x", code=3).stderr
    )
    assert "no source named 'nope'" in cli("source", "remove", "acme", "nope", code=2).stderr
    assert "nope" in cli("sync", "nope", code=2).stderr  # unknown org: nothing queued
    queued = cli("sync", "acme", "--json")
    assert queued["status"] == "queued"
    shown = cli("jobs", "show", queued["job"], "--json")
    assert shown["kind"] == "sync" and shown["status"] == "queued"

    shutil.rmtree(repo)  # ... and one that stops being readable later fails at sync
    failed = cli("sync", "acme", "--inline", "--no-progress", "--json", code=1)
    assert "does not exist" in failed["sources"][0]["error"]
