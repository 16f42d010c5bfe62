"""``orgmem eval`` on the tiny base: base alone, a memory file, an org's checkpoint, bad input."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load, save
from typer.testing import CliRunner

from orgmem.cli.main import app
from orgmem.eval.probes import save_probes
from orgmem.memory import attach, save_memory
from tests.eval.conftest import FACT, OTHER
from tests.pipeline.conftest import FAST_PARAMS, NIGHT1, add_chunks, db, org  # noqa: F401

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["eval", *args])


@pytest.fixture
def probe_file(tmp_path):
    path = tmp_path / "probes.jsonl"
    save_probes([FACT, OTHER], path)
    return path


@pytest.fixture
def memory_file(tmp_path, tiny):
    with attach(tiny, "cms") as handle:
        data = save_memory(handle)
    path = tmp_path / "memory.safetensors"
    path.write_bytes(data)
    return path


def test_base_with_probes_json(probe_file):
    result = run("--base", "tiny-random", "--probes", str(probe_file), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["summary"]["n_probes"] == 2 and data["summary"]["cloze_recall"] == 0
    assert data["summary"]["replies_changed"] == 0 and data["meta"]["base"] == "tiny-random"


def test_memory_file_table(probe_file, memory_file):
    result = run("--base", "tiny-random", "--memory", str(memory_file), "--probes", str(probe_file))
    assert result.exit_code == 0, result.output
    assert "KL to base 0.0000" in result.stdout  # a fresh memory computes the base function
    assert "group" in result.stdout and "0/2" in result.stdout


def test_foreign_memory_and_missing_files_are_named(tmp_path, memory_file, probe_file):
    tensors = load(memory_file.read_bytes())
    from orgmem.memory import read_metadata

    meta = dict(read_metadata(memory_file.read_bytes()))
    meta["base_fingerprint"] = "f" * 64
    foreign = tmp_path / "foreign.safetensors"
    foreign.write_bytes(save(tensors, metadata=meta))
    result = run("--base", "tiny-random", "--memory", str(foreign))
    assert result.exit_code != 0 and "ffffffffffffffff" in result.output and str(foreign) in result.output
    result = run("--base", "tiny-random", "--memory", str(tmp_path / "nope.safetensors"))
    assert result.exit_code != 0 and "nope.safetensors" in result.output
    result = run("--base", "tiny-random", "--probes", str(tmp_path / "nope.jsonl"))
    assert result.exit_code != 0 and "nope.jsonl" in result.output
    result = run("acme@ck1", "--memory", str(memory_file))
    assert result.exit_code != 0 and "not both" in result.output


def test_checkpoint_from_lineage(org):  # noqa: F811
    from orgmem.pipeline import consolidate_org

    add_chunks(org, NIGHT1)
    outcome = consolidate_org(org, params=FAST_PARAMS)
    result = run(f"{org}@{outcome.checkpoint_id}", "--json", "--no-drift", "--auto", "4")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["meta"]["checkpoint"] == outcome.checkpoint_id and data["meta"]["org"] == org
    assert data["groups"]["new"]["n"] >= 1 and data["generic"] is None
    assert all(p["kind"] == "auto" for p in data["probes"])
    served = run(org, "--json", "--no-drift", "--auto", "2")  # ORG alone: the served checkpoint
    assert served.exit_code == 0 and json.loads(served.stdout)["meta"]["checkpoint"] == outcome.checkpoint_id
    missing = run(f"{org}@nosuch", "--no-drift")
    assert missing.exit_code != 0 and "nosuch" in missing.output
    unknown = run("nosuch-org", "--no-drift")
    assert unknown.exit_code != 0 and "nosuch-org" in unknown.output
