"""Ingest fixtures: every test runs on SQLite and PostgreSQL (tests/fixtures_db.py), with an org and
the tiny tokenizer (one token per byte, built in code)."""

from __future__ import annotations

import pytest

from tests.connectors.fetching import allow_loopback
from tests.fixtures_db import *  # noqa: F403


@pytest.fixture(autouse=True)
def _tiny_base(monkeypatch):
    from orgmem.config import get_settings

    monkeypatch.setenv("ORGMEM_BASE_MODEL", "tiny-random")
    get_settings.cache_clear()


@pytest.fixture()
def org(session):
    from orgmem.lineage import create_org

    org = create_org(session, "acme", "Acme")
    session.commit()
    return org


@pytest.fixture()
def count_tokens():
    from orgmem.chunking import token_counter
    from orgmem.models.tiny import build_tiny_tokenizer

    return token_counter(build_tiny_tokenizer())


@pytest.fixture()
def loopback_allowed(monkeypatch):
    """Fake servers listen on 127.0.0.1, an internal address: the operator allows it explicitly."""
    allow_loopback(monkeypatch)
