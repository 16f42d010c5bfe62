"""The kind table loads connectors lazily, and a connector's generator returns its next cursor."""

from __future__ import annotations

import subprocess
import sys

import pytest

from connectors.base import Connector, Pull, SourceConfigError
from connectors.registry import CONNECTORS, config_class, get_connector, kinds, parse_config
from tests.connectors.source_builders import make_docs_folder


def test_no_connector_is_imported_until_its_kind_is_asked_for():
    code = (
        "import sys, connectors.base, connectors.registry as r\n"
        "assert not [m for m in r.CONNECTORS.values() if m.split(':')[0] in sys.modules]\n"
        "r.get_connector('rss')\n"
        "print(sorted(m.split(':')[0] for m in r.CONNECTORS.values() if m.split(':')[0] in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["['connectors.rss']"]


def test_every_kind_loads_its_own_connector_and_config():
    assert kinds() == sorted(CONNECTORS) == ["docs", "git", "rss", "slack"]
    for kind in kinds():
        connector = get_connector(kind)
        assert isinstance(connector, Connector) and connector.kind == kind
        assert config_class(kind) is type(connector).config_cls
        assert get_connector(kind) is not connector  # a fresh instance: connectors keep per-sync state


def test_unknown_kinds_and_fields_name_the_valid_ones():
    with pytest.raises(SourceConfigError, match="kind 'ftp'; known kinds: docs, git, rss, slack"):
        get_connector("ftp")
    with pytest.raises(SourceConfigError, match=r"field 'zip'.*fields of docs: .*path.*extensions"):
        parse_config("docs", {"path": "/x", "zip": "a.zip"})


def test_the_cursor_is_the_generators_return_value(tmp_path):
    folder = make_docs_folder(tmp_path)
    fetch = get_connector("docs").fetch(parse_config("docs", {"path": str(folder)}), None)
    with pytest.raises(StopIteration) as stop:
        while True:
            next(fetch)
    pull = Pull(get_connector("docs").fetch(parse_config("docs", {"path": str(folder)}), None))
    with pytest.raises(RuntimeError, match="not finished"):
        _ = pull.result
    list(pull)
    assert pull.done and pull.result == stop.value.value and set(pull.result["files"]) >= {"guide.md"}
