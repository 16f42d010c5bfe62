"""Issue 14 finding 1 through the CLI (the operator) and at sync time: local paths stay under the
configured roots, never reach orgmem's own home or store, and symlinks do not lead out."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.base import DocumentVersion
from connectors.registry import get_connector, parse_config
from orgmem.cli.main import app
from orgmem.config import get_settings
from tests.connectors.source_builders import make_docs_folder, make_git_repo
from tests.ingest.refusals import refused

runner = CliRunner()
PROJECT_CHECKOUT = Path(__file__).resolve().parents[2]


def cli(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture()
def roots(tmp_path, monkeypatch) -> Path:
    """ORGMEM_SOURCE_ROOTS = <tmp>/roots/{org}, with a folder for acme and one for globex."""
    base = tmp_path / "roots"
    for org in ("acme", "globex"):
        (base / org).mkdir(parents=True)
        (base / org / "plan.md").write_text(f"# {org} plan\n\nThe {org} secret plan.\n")
    monkeypatch.setenv("ORGMEM_SOURCE_ROOTS", str(base / "{org}"))
    get_settings.cache_clear()
    return base


def test_cli_refuses_etc_outside_the_roots(db_url, roots):
    cli("org", "create", "acme")
    text = refused(cli("source", "add", "acme", "docs", "--path", "/etc"), "/etc", "ORGMEM_SOURCE_ROOTS")
    assert "outside the allowed source roots" in text
    assert cli("source", "add", "acme", "docs", "--path", str(roots / "acme")).exit_code == 0


def test_cli_refuses_another_orgs_folder_with_per_org_roots(db_url, roots):
    cli("org", "create", "acme")
    refused(cli("source", "add", "acme", "docs", "--path", str(roots / "globex")), "outside")


def test_cli_refuses_a_project_checkout_outside_the_roots_as_git_source(db_url, roots):
    cli("org", "create", "acme")
    refused(cli("source", "add", "acme", "git", "--path", str(PROJECT_CHECKOUT)), str(PROJECT_CHECKOUT))


def test_cli_refuses_symlink_escaping_a_root(db_url, roots, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "leak.md").write_text("# leak\n\nnot for acme\n")
    (roots / "acme" / "escape").symlink_to(outside, target_is_directory=True)
    cli("org", "create", "acme")
    refused(cli("source", "add", "acme", "docs", "--path", str(roots / "acme" / "escape")), str(outside))


def test_cli_never_reaches_orgmem_home_or_store_even_unconfined(db_url, tmp_path, monkeypatch):
    store = tmp_path / "elsewhere-store"
    (store / "objects").mkdir(parents=True)
    monkeypatch.setenv("ORGMEM_STORE_URL", f"file://{store}")
    get_settings.cache_clear()
    home = get_settings().home
    (home / "cache").mkdir(parents=True, exist_ok=True)
    cli("org", "create", "acme")
    refused(cli("source", "add", "acme", "docs", "--path", str(home)), "orgmem's own", "ORGMEM_HOME")
    refused(cli("source", "add", "acme", "docs", "--name", "c", "--path", str(home / "cache")), "ORGMEM_HOME")
    refused(cli("source", "add", "acme", "docs", "--name", "s", "--path", str(store / "objects")), "store")
    # with no roots configured the operator may name any other folder
    docs = make_docs_folder(tmp_path)
    assert cli("source", "add", "acme", "docs", "--name", "ok", "--path", str(docs)).exit_code == 0


def test_cli_roots_including_home_still_refuse_home(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("ORGMEM_SOURCE_ROOTS", str(tmp_path))
    get_settings.cache_clear()
    home = get_settings().home
    home.mkdir(parents=True, exist_ok=True)
    cli("org", "create", "acme")
    refused(cli("source", "add", "acme", "docs", "--path", str(home)), "ORGMEM_HOME")


def test_docs_sync_does_not_follow_a_symlink_planted_later(roots, tmp_path):
    folder = roots / "acme"
    secret = tmp_path / "outside-secret.md"
    secret.write_text("# other org\n\nGLOBEX_ONLY_MARKER\n")
    (folder / "leak.md").symlink_to(secret)
    (folder / "inside.md").symlink_to(folder / "plan.md")  # a link that stays inside is fine
    connector = get_connector("docs")
    connector.org = "acme"
    items = list(connector.fetch(parse_config("docs", {"path": str(folder)}), None))
    texts = [i.text for i in items if isinstance(i, DocumentVersion)]
    assert not any("GLOBEX_ONLY_MARKER" in t for t in texts)
    assert any("acme secret plan" in t for t in texts)
    assert connector.skipped["symlink-outside"] == 1


def test_sync_rechecks_the_roots(db_url, roots, tmp_path, monkeypatch):
    repo = make_git_repo(roots / "acme")
    cli("org", "create", "acme")
    assert cli("source", "add", "acme", "git", "--name", "code", "--path", str(repo)).exit_code == 0
    monkeypatch.setenv("ORGMEM_SOURCE_ROOTS", str(tmp_path / "other-root"))  # the operator narrows them
    get_settings.cache_clear()
    out = cli("sync", "acme", "--inline", "--no-progress")
    assert out.exit_code == 1 and "outside the allowed source roots" in out.stdout + out.stderr
