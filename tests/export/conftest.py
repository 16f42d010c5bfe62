"""Fixtures of the export tests: the tiny base, and a deployment whose orgs each serve one memory
kind (``support.py``), with the server's own resolution and engine to compare against."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from orgmem.config import get_settings
from orgmem.models import load_base
from tests.export.support import ExportDeployment, make_export_deployment


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_base():
    return load_base("tiny-random", device="cpu")


@pytest.fixture(scope="module")
def dep(tmp_path_factory, tiny_base) -> Iterator[ExportDeployment]:
    d = make_export_deployment(tmp_path_factory.mktemp("export"), tiny_base)
    yield d
    d.state.stop()


@pytest.fixture
def cli_env(dep, monkeypatch) -> ExportDeployment:
    """The CLI reads the deployment's database, store and base from the environment."""
    monkeypatch.setenv("ORGMEM_DATABASE_URL", dep.settings.database_url)
    monkeypatch.setenv("ORGMEM_STORE_URL", dep.settings.store_url)
    monkeypatch.setenv("ORGMEM_BASE_MODEL", "tiny-random")
    get_settings.cache_clear()
    return dep
