"""git connector against a real repository with several commits."""

from __future__ import annotations

import functools
from http.server import SimpleHTTPRequestHandler

import pytest

from connectors.base import DocumentVersion, SourceConfigError, SourceError
from connectors.registry import get_connector, parse_config
from tests.connectors.fetching import allow_loopback, run_fetch
from tests.connectors.source_builders import APP_V1, commit_all, git, make_git_repo, serve


def fetch(config: dict, cursor: dict | None = None, unstored: tuple[str, ...] = ()):
    return run_fetch("git", config, cursor, unstored)


def by_id(items) -> dict[str, DocumentVersion]:
    return {i.external_id: i for i in items}


@pytest.fixture()
def repo(tmp_path):
    return make_git_repo(tmp_path)


def test_first_sync_reads_tree_and_counts_skips(repo):
    connector, items, cursor = fetch({"path": str(repo), "max_file_bytes": 3000})
    docs = by_id(items)
    assert set(docs) == {
        "README.md",
        "src/app.py",
        "src/util.py",
        "config/settings.py",
        "docs/old.md",
        ".gitignore",
        "id_rsa",
    }
    assert "local-secrets.txt" not in docs  # .gitignore'd, never committed
    assert docs["src/app.py"].text == APP_V1
    assert docs["src/app.py"].metadata["commit"] == git(repo, "rev-parse", "HEAD")
    assert dict(connector.skipped) == {"binary": 2, "vendored": 1, "lockfile": 1, "too-large": 1}
    assert cursor == {"commit": git(repo, "rev-parse", "HEAD"), "retry": []}
    assert connector.live_ids == set(docs)


def test_unchanged_head_reads_nothing(repo):
    _, _, cursor = fetch({"path": str(repo)})
    connector, items, again = fetch({"path": str(repo)}, cursor)
    assert items == [] and again == cursor and connector.live_ids is None


def test_incremental_change_delete_and_rename(repo):
    _, _, cursor = fetch({"path": str(repo)})
    (repo / "src" / "app.py").write_text(APP_V1 + "\n\ndef void(x):\n    return None\n")
    commit_all(repo, "add void")
    _, items, cursor = fetch({"path": str(repo)}, cursor)
    assert [(i.external_id, i.deleted) for i in items] == [("src/app.py", False)]

    (repo / "docs" / "old.md").unlink()
    git(repo, "mv", "src/util.py", "src/helpers.py")
    commit_all(repo, "cleanup")
    _, items, cursor = fetch({"path": str(repo)}, cursor)
    changes = {(i.external_id, i.deleted) for i in items}
    assert changes == {("docs/old.md", True), ("src/util.py", True), ("src/helpers.py", False)}


def test_unstored_items_are_retried(repo):
    _, _, cursor = fetch({"path": str(repo)}, None, unstored=("src/app.py",))
    assert cursor["retry"] == ["src/app.py"]
    _, items, cursor = fetch({"path": str(repo)}, cursor)
    assert [i.external_id for i in items] == ["src/app.py"]
    assert cursor["retry"] == []


def test_lost_commit_falls_back_to_full_listing(repo):
    connector, items, _ = fetch({"path": str(repo)}, {"commit": "0" * 40, "retry": []})
    assert connector.live_ids is not None and "src/app.py" in by_id(items)


def test_clone_url_and_branch(repo, tmp_path, monkeypatch):
    # clone URLs are network URLs (a local repository is a 'path'): serve this one over git's dumb
    # HTTP protocol on 127.0.0.1, which the operator allows here explicitly
    allow_loopback(monkeypatch)
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "feature.md").write_text("# Feature\n\nOnly on the feature branch.\n")
    commit_all(repo, "feature")
    git(repo, "update-server-info")
    handler = functools.partial(QuietFiles, directory=str(repo / ".git"))
    with serve(handler) as base:
        url = base + "/"
        get_connector("git").check(parse_config("git", {"url": url, "branch": "feature"}))
        _, items, _ = fetch({"url": url, "branch": "main"})
        assert "feature.md" not in by_id(items)
        _, items, _ = fetch({"url": url, "branch": "feature"})  # second call fetches into the cached clone
        assert "feature.md" in by_id(items)
        with pytest.raises(SourceError, match="ref 'nope' not found"):
            get_connector("git").check(parse_config("git", {"url": url, "branch": "nope"}))


class QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_bad_inputs_name_the_problem(repo, tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        fetch({"path": str(tmp_path / "nope")})
    (tmp_path / "plain").mkdir()
    with pytest.raises(SourceError, match="is not a git repository"):
        fetch({"path": str(tmp_path / "plain")})
    with pytest.raises(SourceError, match="ref 'nobranch' not found"):
        fetch({"path": str(repo), "branch": "nobranch"})
    with pytest.raises(SourceConfigError, match="exactly one of 'path'"):
        parse_config("git", {})
    with pytest.raises(SourceConfigError, match="field 'max_size'"):
        parse_config("git", {"path": str(repo), "max_size": 3})
    with pytest.raises(SourceConfigError, match="unknown source kind 'svn'"):
        parse_config("svn", {})
