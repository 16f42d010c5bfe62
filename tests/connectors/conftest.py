"""Connector test fixtures; ``loopback_allowed`` for the tests that talk to a fake server."""

from __future__ import annotations

import pytest

from tests.connectors.fetching import allow_loopback


@pytest.fixture
def loopback_allowed(monkeypatch):
    """The fake servers listen on 127.0.0.1, an internal address: the operator allows it explicitly."""
    allow_loopback(monkeypatch)
