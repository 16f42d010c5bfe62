"""``orgmem export`` refusals: each names the thing and leaves the destination as it was."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from orgmem.db.session import session_scope
from orgmem.errors import OrgmemError
from orgmem.export.hf import CODE_DIR, CODE_FILES
from orgmem.export.kinds import convert
from orgmem.lineage import create_org
from orgmem.memory.config import MemoryConfig
from tests.export.helpers import export
from tests.export.support import kind_org


def test_unknown_org_and_checkpoint_are_not_found(cli_env, tmp_path):
    out = str(tmp_path / "m")
    assert "org 'nope' not found" in export("nope", out, code=2).stderr
    assert "checkpoint 'ck_nope' not found (org 'acme'" in export("acme@ck_nope", out, code=2).stderr
    other = cli_env.checkpoints["cms"]  # kind-cms's checkpoint: not acme's
    assert f"checkpoint {other!r} not found (org 'acme'" in export(f"acme@{other}", out, code=2).stderr
    assert "must be ORG or ORG@CHECKPOINT" in export("acme@", out, code=1).stderr
    assert not (tmp_path / "m").exists()


def test_an_org_without_a_served_checkpoint_or_group_is_refused(cli_env, tmp_path):
    with session_scope(cli_env.settings.database_url, write=True) as s:
        create_org(s, "newco", "Newco", actor="test")
    assert "org 'newco' serves no checkpoint yet" in export("newco", str(tmp_path / "m"), code=2).stderr
    result = export("acme", str(tmp_path / "m"), "--group", "finance", code=2)
    assert "group 'finance' of org 'acme' serves no checkpoint" in result.stderr
    legal = cli_env.checkpoints["legal-1"]
    result = export(f"acme@{legal}", str(tmp_path / "m"), "--group", "legal", code=1)
    assert f"checkpoint {legal!r} is group 'legal'" in result.stderr


def test_quarantined_checkpoint_is_refused(cli_env, tmp_path):
    ck = cli_env.checkpoints["quarantined"]
    result = export(f"acme@{ck}", str(tmp_path / "m"), code=3)
    assert f"checkpoint {ck!r} of org 'acme' is quarantined" in result.stderr


def test_checkpoint_of_another_base_is_refused_naming_both_fingerprints(cli_env, tiny_base, tmp_path):
    ck = cli_env.checkpoints["foreign"]
    result = export(f"acme@{ck}", str(tmp_path / "m"), code=5)
    assert f"checkpoint {ck!r} of org 'acme' was trained on base" in result.stderr
    assert "ffffffffffffffff" in result.stderr and tiny_base.fingerprint[:16] in result.stderr


def test_a_non_empty_directory_is_refused_and_force_replaces_only_a_previous_export(cli_env, tmp_path):
    out = tmp_path / "m"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = export("acme", str(out), code=3)
    assert f"export directory {str(out)!r} exists and is not empty" in result.stderr
    assert "--force" in result.stderr
    result = export("acme", str(out), "--force", code=3)  # --force on someone's folder deletes nothing
    assert "holds files that are not an orgmem export" in result.stderr
    assert (out / "notes.txt").read_text() == "mine" and len(list(out.iterdir())) == 1
    (out / "notes.txt").unlink()
    first = export("acme", str(out))  # an empty directory is fine
    assert ".orgmem-export.json" in first["files"] and (out / ".orgmem-export.json").is_file()
    (out / "stale.bin").write_text("old")
    lora = export(kind_org("lora"), str(out), "--format", "peft", "--force")  # replaces the previous export
    assert not (out / "stale.bin").exists() and not (out / "config.json").exists()
    assert {p.name for p in out.iterdir()} == set(lora["files"])
    assert [p.name for p in tmp_path.iterdir()] == ["m"], "no staging folder is left beside it"
    (tmp_path / "file").write_text("x")
    assert "is not a directory" in export("acme", str(tmp_path / "file"), "--force", code=3).stderr


def test_unknown_format_is_refused(cli_env, tmp_path):
    result = export(kind_org("lora"), str(tmp_path / "m"), "--format", "gguf", code=1)
    assert "export format 'gguf' is not one of hf, peft" in result.stderr


@dataclass
class _UnexportableConfig(MemoryConfig):
    kind: ClassVar[str] = "hopfield"


def test_a_kind_without_an_exported_form_is_refused_by_name():
    with pytest.raises(OrgmemError, match="memory kind 'hopfield' cannot be exported .*cms, lora, titans"):
        convert(_UnexportableConfig(), {}, 4, "memory of checkpoint 'ck_x'")


def test_the_modeling_code_imports_only_torch_and_transformers():
    """The folder is loaded where orgmem is not installed: its code may import nothing of orgmem."""
    allowed = {"__future__", "typing", "torch", "transformers", "huggingface_hub"}
    for name in CODE_FILES:
        tree = ast.parse(Path(CODE_DIR, name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = set() if node.level else {str(node.module).split(".")[0]}
            else:
                continue
            assert roots <= allowed, f"{name} imports {roots - allowed}"
