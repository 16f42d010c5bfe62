"""Memory test fixtures: the tiny base (seeded, on the CPU) where a module does not load its own, and a
private models folder for the modules that write meta-initialisations (``usefixtures``)."""

from __future__ import annotations

import pytest
import torch

from orgmem.config import get_settings
from orgmem.models import load_base


@pytest.fixture()
def private_models_dir(tmp_path, monkeypatch):
    """Meta-initialisations written here must not land in the shared models folder."""
    monkeypatch.setenv("ORGMEM_MODELS_DIR", str(tmp_path / "models"))
    get_settings.cache_clear()


@pytest.fixture()
def base():
    torch.manual_seed(0)
    return load_base("tiny-random", device="cpu")
