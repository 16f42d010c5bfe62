"""Engine test fixtures: the tiny base, loaded once per module (tests that train attach a fresh memory)."""

from __future__ import annotations

import pytest

from orgmem.models import load_base


@pytest.fixture(scope="module")
def base():
    return load_base("tiny-random")
