"""``orgmem model info`` and ``orgmem memory kinds|inspect|forms`` on the tiny base."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from orgmem.cli.main import app
from orgmem.memory import attach, save_memory
from orgmem.models import load_base

runner = CliRunner()


def test_model_info_tiny_json():
    result = runner.invoke(app, ["model", "info", "--base", "tiny-random", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["layers"] == 4 and data["fingerprint"] == load_base("tiny-random").fingerprint


def test_model_info_unknown_base_is_a_clean_error():
    result = runner.invoke(app, ["model", "info", "--base", "no-such-base"])
    assert result.exit_code == 2 and "no-such-base" in result.output


def test_memory_kinds_lists_cms_and_lora():
    result = runner.invoke(app, ["memory", "kinds", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["cms"]["periods"] == [1, 4, 16] and data["lora"]["r"] == 16


def test_memory_inspect_reads_a_saved_memory(tmp_path):
    base = load_base("tiny-random")
    with attach(base, "cms") as handle:
        (tmp_path / "memory.safetensors").write_bytes(save_memory(handle))
        params = handle.num_trainable()
    result = runner.invoke(app, ["memory", "inspect", str(tmp_path / "memory.safetensors"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["kind"] == "cms" and data["parameters"] == params
    assert data["base_fingerprint"] == base.fingerprint
    missing = runner.invoke(app, ["memory", "inspect", str(tmp_path / "nope.safetensors")])
    assert missing.exit_code == 2 and "nope.safetensors" in missing.output
    (tmp_path / "bad.safetensors").write_bytes(b"junk")
    bad = runner.invoke(app, ["memory", "inspect", str(tmp_path / "bad.safetensors")])
    assert bad.exit_code == 4 and "bad.safetensors" in bad.output


def test_memory_forms_shows_derived_questions(tmp_path):
    doc = tmp_path / "runbook.md"
    doc.write_text("# Heron\n\nHeron listens on port 7415.\n")
    result = runner.invoke(app, ["memory", "forms", str(doc), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data[0]["statement"] == "Heron listens on port 7415."
    assert "Tell me about Heron." in data[0]["questions"]
