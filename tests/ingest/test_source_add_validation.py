"""Issue 14 finding 5: ``source add`` refuses sources that can never sync (with the error the sync
would give), ``source test`` runs the same check on a registered source, and names are slugs."""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest
from typer.testing import CliRunner

from orgmem.cli.main import app
from tests.connectors.source_builders import (
    ServerState,
    feed_server,
    make_docs_folder,
    make_git_repo,
    make_slack_zip,
)
from tests.ingest.refusals import refused

runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, list(args))


def names() -> list[str]:
    return [s["name"] for s in json.loads(cli("source", "list", "acme", "--json").stdout)]


@pytest.fixture()
def acme(db_url):
    assert cli("org", "create", "acme").exit_code == 0


def test_missing_paths_are_refused_at_add_time(acme, tmp_path):
    refused(cli("source", "add", "acme", "docs", "--path", str(tmp_path / "gone")), "does not exist")
    refused(cli("source", "add", "acme", "git", "--path", str(tmp_path / "gone")), "does not exist")
    refused(cli("source", "add", "acme", "slack", "--zip", str(tmp_path / "gone.zip")), "does not exist")
    assert names() == []


def test_a_folder_that_is_not_a_git_repository_is_refused(acme, tmp_path):
    folder = make_docs_folder(tmp_path)
    refused(cli("source", "add", "acme", "git", "--path", str(folder)), "is not a git repository")
    repo = make_git_repo(tmp_path)
    nope = cli("source", "add", "acme", "git", "--path", str(repo), "--branch", "nope")
    refused(nope, "ref 'nope' not found")
    assert cli("source", "add", "acme", "git", "--path", str(repo), "--branch", "main").exit_code == 0
    assert names() == ["git"]


def test_corrupt_and_non_slack_zips_are_refused(acme, tmp_path):
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(b"PK\x03\x04 this is not really a zip")
    refused(cli("source", "add", "acme", "slack", "--zip", str(corrupt)), "not a valid zip")
    other = tmp_path / "photos.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("holiday.jpg", b"\xff\xd8")
    refused(cli("source", "add", "acme", "slack", "--zip", str(other)), "is not a Slack export")
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(broken, "w") as zf:
        zf.writestr("channels.json", "[]")
        zf.writestr("users.json", "{not json")
    refused(cli("source", "add", "acme", "slack", "--zip", str(broken)), "users.json is unreadable")
    good = make_slack_zip(tmp_path / "export.zip")
    assert cli("source", "add", "acme", "slack", "--zip", str(good)).exit_code == 0
    assert names() == ["slack"]


def test_a_feed_that_answers_404_or_is_not_a_feed_is_refused(acme, loopback_allowed):
    state = ServerState()
    with feed_server(state) as url:
        state.routes["/html"] = (200, "text/html", "<html><body>hello, not a feed</body></html>")
        state.serve_rss([("g1", url + "/a", "T", "d")])
        refused(cli("source", "add", "acme", "rss", "--url", url + "/missing"), "returned HTTP 404")
        refused(cli("source", "add", "acme", "rss", "--url", url + "/html"), "is not an RSS/Atom feed")
        assert cli("source", "add", "acme", "rss", "--url", url + "/feed.xml").exit_code == 0
    assert names() == ["rss"]


BAD_NAMES = ["<script>alert(1)</script>", "a/../b", "../etc", "Docs", "a b", "-x", "x" * 64]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_source_names_must_be_slugs(acme, tmp_path, bad):
    docs = make_docs_folder(tmp_path)
    refused(cli("source", "add", "acme", "docs", "--name", bad, "--path", str(docs)), "source name")
    assert names() == []


def test_source_test_runs_the_add_time_check_on_a_registered_source(acme, tmp_path):
    docs = make_docs_folder(tmp_path)
    assert cli("source", "add", "acme", "docs", "--name", "handbook", "--path", str(docs)).exit_code == 0
    ok = cli("source", "test", "acme", "handbook")
    assert ok.exit_code == 0 and "ok" in ok.stdout, ok.stdout + ok.stderr
    shutil.rmtree(docs)
    refused(cli("source", "test", "acme", "handbook"), "handbook", "does not exist")
    refused(cli("source", "test", "acme", "nope"), "no source named 'nope'")
