"""Fixtures of the console tests: the serving tests' deployment (tiny base, SQLite, file store, two
orgs, taught memories) plus what the console shows beyond it: checkpoint metrics, a source with
one pending document and one document a candidate checkpoint was trained on (to forget)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from orgmem.config import get_settings
from orgmem.db.models import Checkpoint
from orgmem.db.session import session_scope
from orgmem.lineage import get_org
from orgmem.serving.app import create_app
from orgmem.serving.config import ServeSettings
from orgmem.store import open_store
from tests.lineage_factories import add_chunks, record
from tests.serving import conftest as serving_fixtures
from tests.serving.support import Deployment, make_deployment

# The serving tests' session fixtures (one thread, tiny base, taught memories), shared, not copied.
_one_thread = serving_fixtures._one_thread
tiny_base = serving_fixtures.tiny_base
memories = serving_fixtures.memories

METRICS = {
    "acme-1": {"new_cloze_recall": 0.25, "retention_cloze_recall": None, "kl": 0.01, "ppl_ratio": 1.01},
    "acme-2": {"new_cloze_recall": 0.5, "retention_cloze_recall": 0.75, "kl": 0.02, "ppl_ratio": 1.03},
}
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class ConsoleData:
    """Ids the console tests look for."""

    candidate: str  # a candidate child of acme-2, trained on FORGET_DOC
    pending_doc: str = "pending.md"
    forget_doc: str = "secret.md"


def add_console_data(dep: Deployment) -> ConsoleData:
    url = dep.settings.database_url
    with session_scope(url, write=True) as s:
        for name, metrics in METRICS.items():
            row = update(Checkpoint).where(Checkpoint.id == dep.checkpoints[name])
            s.execute(row.values(metrics=metrics))
    with session_scope(url, write=True) as s:
        org = get_org(s, "acme")
        add_chunks(s, org, ["pending"])
        secret = add_chunks(s, org, ["secret"])
        ck = record(s, open_store(settings=dep.settings), org, dep.checkpoints["acme-2"], secret,
                    metrics={"new_cloze_recall": 1.0, "kl": 0.5})
        return ConsoleData(candidate=ck.id)


@pytest.fixture
def console_env(tmp_path, tiny_base, memories, monkeypatch) -> Iterator[tuple[Deployment, ConsoleData]]:
    """A fresh deployment per test (actions change it); the configured database is this one, since
    the job functions (sync, consolidate, the replay after a forget) read the configured settings."""
    root = tmp_path / "deployment"
    root.mkdir()
    dep = make_deployment(root, tiny_base, memories)
    data = add_console_data(dep)
    monkeypatch.setenv("ORGMEM_DATABASE_URL", dep.settings.database_url)
    monkeypatch.setenv("ORGMEM_STORE_URL", dep.settings.store_url)
    get_settings.cache_clear()
    yield dep, data
    get_settings.cache_clear()


def serve_settings() -> ServeSettings:
    return ServeSettings(cache_size=4, max_batch=8, rate_limit_per_minute=100_000, rate_limit_burst=10_000,
                         default_max_tokens=8)


@pytest.fixture
def console(console_env, tiny_base) -> Iterator[tuple[TestClient, Deployment, ConsoleData]]:
    dep, data = console_env
    dep.app = create_app(dep.settings, serve_settings(), base=tiny_base)
    with TestClient(dep.app, follow_redirects=False) as client:
        yield client, dep, data


def csrf_of(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "the page has no CSRF token field"
    return match.group(1)


def login(client: TestClient, key: str):
    """Log in through the form; returns the response of the POST."""
    token = csrf_of(client.get("/console/login").text)
    return client.post("/console/login", data={"csrf_token": token, "api_key": key})
