"""Shared test fixtures.

Real-service tests read their endpoints from ``ORGMEM_TEST_*`` variables exported by
``infra/ci/services.sh``. Without them a test is skipped with the reason printed — except under
``CI=true``, where a missing service is a failure, so CI never silently skips.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def service_env(name: str) -> str:
    """Value of a real-service variable, or skip (locally) / fail (in CI) naming what is missing."""
    value = os.environ.get(name)
    if value:
        return value
    reason = f"{name} is not set: start real services with `source infra/ci/services.sh; start_services`"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _isolated_orgmem_home(tmp_path, monkeypatch):
    """Every test gets its own ORGMEM_HOME so embedded state never leaks between tests."""
    from orgmem.config import Settings, get_settings

    # Converted base models are a shared, read-only cache: keep pointing at the real one.
    monkeypatch.setenv("ORGMEM_MODELS_DIR", str(Settings().models_dir))
    monkeypatch.setenv("ORGMEM_HOME", str(tmp_path / "orgmem-home"))
    for var in ("ORGMEM_DATABASE_URL", "ORGMEM_STORE_URL", "ORGMEM_BROKER_URL"):
        monkeypatch.delenv(var, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
