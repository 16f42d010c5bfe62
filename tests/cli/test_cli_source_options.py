"""``orgmem source add`` options come from the connectors' config classes: a new connector (or field)
gets its options, help and ``--set`` key without an edit to the CLI."""

from __future__ import annotations

import json

import pytest
from pydantic import Field
from typer.testing import CliRunner

from connectors import registry
from connectors.base import Connector, SourceConfig, SourceConfigError, cli_hints
from orgmem.cli.main import app
from orgmem.cli.source_options import field_options, set_entries
from tests.connectors.source_builders import make_docs_folder

runner = CliRunner()


class WikiConfig(SourceConfig):
    """A config only this test knows: the CLI must learn it from the table alone."""

    space: str = Field(description="Wiki space key.")
    page_limit: int = Field(100, description="Pages read per sync.")
    labels: list[str] = Field(
        [], description="Only pages with this label.", json_schema_extra=cli_hints("--label")
    )


class WikiConnector(Connector):
    kind = "wiki"
    config_cls = WikiConfig


@pytest.fixture()
def wiki(monkeypatch):
    monkeypatch.setitem(registry.CONNECTORS, "wiki", f"{__name__}:WikiConnector")
    registry.connector_class.cache_clear()
    yield
    registry.connector_class.cache_clear()


def help_of(*args: str) -> str:
    result = runner.invoke(app, ["source", "add", *args, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_every_field_of_every_kind_is_an_option():
    for kind in registry.kinds():
        options = {o.field for o in field_options([kind], set())}
        assert options == set(registry.config_class(kind).model_fields), kind


def test_help_shows_all_kinds_or_only_the_one_given():
    every = help_of()
    for flag in ("--path", "--zip", "--channel", "--fetch-linked", "--restrict", "--set", "slack sources"):
        assert flag in every
    git = help_of("acme", "git")
    assert "--branch" in git and "Branch or ref (default HEAD)" in git and "--restrict" in git
    assert "--zip" not in git and "--fetch-linked" not in git


def test_a_new_connector_gets_options_help_and_set_keys(wiki):
    text = help_of("acme", "wiki")
    assert "--space" in text and "Wiki space key" in text and "--label" in text and "--page-limit" in text
    given = set_entries("wiki", ["page-limit=5", "labels=a", "labels=b"])
    assert given == {"page_limit": "5", "labels": ["a", "b"]}
    assert "wiki sources" in help_of() and "--space" in help_of()


def test_set_checks_keys_against_the_kind():
    assert set_entries("slack", ["channels=general", "channels=random", "lookback_days=3"]) == {
        "channels": ["general", "random"], "lookback_days": "3",
    }  # fmt: skip
    assert set_entries("docs", ['extensions=[".md"]'])["extensions"] == [".md"]
    with pytest.raises(SourceConfigError, match=r"docs sources have no field 'zip'; fields of docs: .*path"):
        set_entries("docs", ["zip=a.zip"])
    with pytest.raises(SourceConfigError, match="kind 'ftp'; known kinds: docs, git, rss, slack"):
        set_entries("ftp", ["path=x"])


def cli(*args: str, code: int = 0):
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout) if code == 0 and "--json" in args else result


def test_set_and_generated_options_end_to_end(db_url, tmp_path, monkeypatch):
    docs = make_docs_folder(tmp_path)
    cli("org", "create", "acme")
    monkeypatch.chdir(tmp_path)
    added = cli("source", "add", "acme", "docs", "--set", "path=docs", "--set", "max_file_bytes=3000",
                "--max-file-bytes", "4000", "--json")  # fmt: skip
    assert added["config"] == {"path": str(docs), "max_file_bytes": 4000}  # the option beats --set
    bad = cli("source", "add", "acme", "docs", "--name", "d2", "--set", "nope=1", code=6)
    assert "no field 'nope'" in bad.stderr and "fields of docs: " in bad.stderr
    assert "KEY=VALUE" in cli("source", "add", "acme", "docs", "--set", "novalue", code=2).stderr
    other = cli("source", "add", "acme", "docs", "--name", "d3", "--path", str(docs), "--branch", "x", code=6)
    assert "field 'branch'" in other.stderr and "fields of docs: " in other.stderr
