"""The layering of docs/architecture.md is enforced: import-linter's contracts (pyproject.toml) hold
on the tree, and an import that breaks one fails them. The broken copies are made in a temporary
folder, so the check is on what lint-imports does, not on a reading of its configuration."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("orgmem", "connectors", "workers")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports on the packages under ``root`` (found first on the path), no cache."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(  # noqa: S603 - fixed argument list, our own tool
        [str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory) -> Path:
    """The three packages and pyproject.toml, copied once for the module."""
    root = tmp_path_factory.mktemp("tree")
    for package in PACKAGES:
        shutil.copytree(REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def broken_copy(tree_copy: Path, tmp_path: Path, module: str, line: str) -> Path:
    """A copy of the tree with ``line`` added as a new module ``module`` (a dotted path)."""
    root = tmp_path / "broken"
    shutil.copytree(tree_copy, root)
    target = root.joinpath(*module.split(".")).with_suffix(".py")
    target.write_text(f'"""Breaks a contract on purpose."""\n\n{line}\n')
    return root


def test_the_tree_keeps_every_contract(tree_copy):
    done = lint_imports(tree_copy)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "broken" not in done.stdout.lower().replace("0 broken", "")


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("orgmem.engine.uses_the_broker", "import celery  # noqa: F401", "celery"),
        ("orgmem.memory.reads_the_cli", "import orgmem.cli.main  # noqa: F401", "layers"),
        ("orgmem.serving.reads_the_api", "import orgmem.api  # noqa: F401", "layers"),
        ("orgmem.engine.reads_the_server", "import orgmem.serving.engine  # noqa: F401", "serving runtime"),
        ("orgmem.db.reaches_the_workers", "import workers.tasks  # noqa: F401", "layers"),
        ("orgmem.export.reads_the_server", "import orgmem.serving.engine  # noqa: F401", "layers"),
        ("orgmem.export.hf_code.needs_orgmem", "import orgmem.memory.rows  # noqa: F401", "modeling code"),
    ],
)
def test_an_import_across_the_layers_fails_lint_imports(tree_copy, tmp_path, module, line, contract):
    done = lint_imports(broken_copy(tree_copy, tmp_path, module, line))
    assert done.returncode != 0, done.stdout
    broken = done.stdout.split("Broken contracts", 1)[-1]
    assert module in broken and contract in broken.lower(), done.stdout


def test_a_cycle_between_sibling_packages_fails_lint_imports(tree_copy, tmp_path):
    """store sits below lineage; a store module importing lineage closes a cycle and a layer breach."""
    loop = broken_copy(tree_copy, tmp_path, "orgmem.store.loops", "import orgmem.lineage  # noqa: F401")
    done = lint_imports(loop)
    assert done.returncode != 0, done.stdout
    assert "orgmem.store.loops" in done.stdout
