"""Fixtures of the console tests: the serving tests' deployment (tiny base, SQLite, file store, two
orgs, taught memories) plus what the console shows beyond it: checkpoint metrics, a source with
one pending document and one document a candidate checkpoint was trained on (to forget); on
request (``eng``) a group lineage of acme with an admin key carrying the group; and helpers that
log in and submit the console's forms."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from orgmem.app import create_app
from orgmem.checkpoints import MEMORY, CheckpointDraft, InputRef, commit_checkpoint
from orgmem.config import get_settings
from orgmem.db.models import Checkpoint, Document, DocumentVersion, Org, Source
from orgmem.db.session import session_scope
from orgmem.keys import create_key
from orgmem.lineage import get_org
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
#: The installation operator key of the console tests' server.
OPERATOR_KEY = "operator-" + "s" * 40


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


def serve_settings(operator_key: str | None = OPERATOR_KEY) -> ServeSettings:
    return ServeSettings(cache_size=4, max_batch=8, rate_limit_per_minute=100_000, rate_limit_burst=10_000,
                         default_max_tokens=8, operator_key=operator_key)


@pytest.fixture
def console(console_env, tiny_base) -> Iterator[tuple[TestClient, Deployment, ConsoleData]]:
    dep, data = console_env
    dep.app = create_app(dep.settings, serve_settings(), base=tiny_base)
    with TestClient(dep.app, follow_redirects=False) as client:
        yield client, dep, data


@dataclass
class GroupData:
    """acme's group ``eng``: a lineage e1 -> e2 (e2 head, served), a pending eng document, and an
    admin key that carries the group (the fixtures' other keys carry none)."""

    e1: str
    e2: str
    key: str
    pending_doc: str = "eng-pending.md"


def add_group_data(dep: Deployment) -> GroupData:
    url = dep.settings.database_url
    store = open_store(settings=dep.settings)
    with session_scope(url, write=True) as s:
        org = get_org(s, "acme")
        chunks = add_chunks(s, org, ["eng-1", "eng-2", "eng-pending"], source_name="eng-wiki")
        source = (Source.org_id == org.id) & (Source.name == "eng-wiki")
        s.execute(update(Source).where(source).values(audience="eng"))
        versions = s.query(DocumentVersion.document_id).filter(
            DocumentVersion.id.in_([c.document_version_id for c in chunks])).scalar_subquery()
        s.execute(update(Document).where(Document.id.in_(versions)).values(audience="eng"))
        s.commit()
        ids = []
        for i, chunk in enumerate(chunks[:2]):
            ck = commit_checkpoint(s, store, CheckpointDraft(
                org=org, parent_id=ids[-1] if ids else None, objects={MEMORY: f"eng:{i}".encode()},
                manifest={},
                inputs=[InputRef(chunk.id)], metrics={"new_cloze_recall": 0.1 * (i + 1)}, status="promoted",
                created_by="test", base_model="tiny-random", base_fingerprint="f" * 64, memory_kind="cms",
                audience="eng"))
            ids.append(ck.checkpoint.id)
        key = create_key(s, "acme", "admin", "eng-admin", actor="test", groups=["eng"]).key
    return GroupData(e1=ids[0], e2=ids[1], key=key)


@pytest.fixture
def eng(console) -> GroupData:
    """The group data, added to the running console's deployment."""
    _, dep, _ = console
    return add_group_data(dep)


def org_row(dep: Deployment, slug: str = "acme") -> dict:
    with session_scope(dep.settings.database_url) as s:
        org = s.query(Org).filter_by(slug=slug).one()
        return {"head": org.head_checkpoint_id, "pinned": org.pinned_checkpoint_id,
                "served": org.served_checkpoint_id}


def act(client: TestClient, action: str, **fields):
    """Open the action's confirmation page, then submit its form (with the page's token and hidden
    fields, as the browser would)."""
    query = {k: v for k, v in fields.items() if k in ("checkpoint", "document", "audience")}
    page = client.get(f"/console/orgs/acme/confirm/{action}", params=query)
    assert page.status_code == 200, page.text
    hidden = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    return client.post(f"/console/orgs/acme/actions/{action}", data={**hidden, **fields})


def flash_of(client: TestClient, response) -> str:
    """The page the action redirected to, with its flash message (unescaped)."""
    assert response.status_code == 303, response.text
    return html.unescape(client.get(response.headers["location"]).text)


def csrf_of(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "the page has no CSRF token field"
    return match.group(1)


def login(client: TestClient, key: str):
    """Log in through the form; returns the response of the POST."""
    token = csrf_of(client.get("/console/login").text)
    return client.post("/console/login", data={"csrf_token": token, "api_key": key})
