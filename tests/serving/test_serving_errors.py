"""Error responses name no internals, and another org's ids answer exactly like unknown ones.

A failure of the server's own infrastructure (a corrupt or missing stored object, the store or the
database down, any unexpected exception) answers a generic message with a request id, which is
also the ``X-Request-ID`` header and the ``request_id`` of the server log line that has the full
detail. A checkpoint, job, receipt, key, source or document id of another org answers the same
404, word for word, as an id that exists nowhere, on every route that takes such an id.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy.exc import DataError, OperationalError

from orgmem.api.errors import as_api_error
from orgmem.checkpoints import MEMORY
from orgmem.db.models import CheckpointObject
from orgmem.db.session import session_scope
from orgmem.errors import OrgmemError
from orgmem.store import StoreUnavailableError
from tests.console.conftest import login
from tests.serving.planted import Planted, plant
from tests.serving.support import PREFIX

REQUEST_ID = re.compile(r"req_[0-9a-f]{24}")


def call(dep, method: str, path: str, key: str | None = "acme-admin", **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {dep.keys[key]}"} if key else {}
    return httpx.request(method, f"{dep.url}{path}", headers=headers, timeout=60, **kw)


def internals(dep) -> list[str]:
    """Strings of the deployment no response may contain."""
    root = str(dep.root)
    return [dep.settings.store_url, dep.settings.database_url, root, "file://", "sqlite:", "Traceback"]


def assert_generic(resp: httpx.Response, dep, status: int, code: str) -> str:
    """A generic 5xx: the code, a request id equal to the header, no internal location. Its id."""
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["type"] == "server_error" and error["code"] == code, error
    for secret in internals(dep):
        assert secret not in resp.text, (secret, resp.text)
    assert REQUEST_ID.findall(error["message"]) == [resp.headers["x-request-id"]], error["message"]
    return resp.headers["x-request-id"]


def logged(caplog, request_id: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "request_id", None) == request_id]


def memory_file(dep, checkpoint_id: str) -> Path:
    with session_scope(dep.settings.database_url) as s:
        key = s.get(CheckpointObject, (checkpoint_id, MEMORY)).key
    return dep.root / "store" / key


def complete(dep, key: str = "acme-employee", model: str = "acme") -> httpx.Response:
    return call(dep, "POST", "/v1/completions", key, json={"model": model, "prompt": PREFIX, "max_tokens": 2})


# -- no internals in error responses --------------------------------------------------------------

def test_corrupt_memory_answers_a_generic_500_to_an_employee(deployment, caplog):
    """The integrity error names the store URL and the object's path: only the log may say so."""
    caplog.set_level(logging.ERROR)
    path = memory_file(deployment, deployment.checkpoints["acme-2"])
    original = path.read_bytes()
    deployment.state.clear_cache()
    path.write_bytes(b"\0" * len(original))
    try:
        resp = complete(deployment)
    finally:
        path.write_bytes(original)
    request_id = assert_generic(resp, deployment, 500, "integrity_error")
    assert "integrity" in resp.json()["error"]["message"]
    (record,) = logged(caplog, request_id)
    assert deployment.settings.store_url in record.getMessage() and record.error_type == "IntegrityError"
    assert complete(deployment).status_code == 200, "the restored object serves again"


def test_missing_memory_object_answers_a_generic_500(deployment):
    path = memory_file(deployment, deployment.checkpoints["acme-2"])
    original = path.read_bytes()
    deployment.state.clear_cache()
    path.unlink()
    try:
        resp = complete(deployment)
    finally:
        path.write_bytes(original)
    assert_generic(resp, deployment, 500, "integrity_error")


def test_store_down_and_unexpected_errors_answer_generic_5xx(deployment, monkeypatch, caplog):
    caplog.set_level(logging.ERROR)
    endpoint = "http://10.9.8.7:7480"

    def unreachable(key, expected_sha256=None):
        raise StoreUnavailableError(f"S3 endpoint {endpoint} unreachable while reading {key!r}")

    deployment.state.clear_cache()
    monkeypatch.setattr(deployment.state.store, "get", unreachable)
    resp = complete(deployment)
    assert_generic(resp, deployment, 503, "store_unavailable")
    assert endpoint not in resp.text

    def broken(key, expected_sha256=None):
        raise RuntimeError(f"boom reading {deployment.root}/store/{key}")

    monkeypatch.setattr(deployment.state.store, "get", broken)
    resp = complete(deployment)
    request_id = assert_generic(resp, deployment, 500, "internal_error")
    assert "RuntimeError" not in resp.text and "boom" not in resp.text
    assert any("boom" in r.getMessage() for r in logged(caplog, request_id))


def test_readyz_names_no_database_url(deployment, monkeypatch):
    url = deployment.settings.database_url

    def down():
        raise OperationalError("SELECT 1", {}, Exception(f"unable to open database file {url}"))

    monkeypatch.setattr(deployment.state, "check_database", down)
    resp = httpx.get(f"{deployment.url}/readyz")
    assert resp.status_code == 503 and resp.json()["checks"]["database"].startswith("unreachable")
    for secret in internals(deployment):
        assert secret not in resp.text


def test_every_response_carries_a_request_id(deployment):
    ids = [call(deployment, "GET", "/api/me", key).headers["x-request-id"] for key in ("acme-admin", None)]
    assert all(REQUEST_ID.fullmatch(i) for i in ids) and ids[0] != ids[1]


def test_4xx_messages_are_scrubbed_of_internal_locations(deployment):
    """The second line: a user-facing message that names a location of the server loses it."""
    store = deployment.settings.store_url
    err = as_api_error(OrgmemError(f"object key 'x' resolves outside {store} and {deployment.root}/y"),
                       redact=deployment.state.redact)
    assert err.status == 400 and store not in str(err) and str(deployment.root) not in str(err)
    assert "<internal>" in str(err)
    assert "s3://" not in str(as_api_error(OrgmemError("no bucket at s3://corp-secret/prefix")))
    assert "file:///etc" in str(as_api_error(OrgmemError("git clone URL 'file:///etc' is refused"),
                                             redact=deployment.state.redact)), "the client's own input"


def test_a_value_the_database_refuses_is_a_400_naming_no_sql():
    """PostgreSQL refuses a NUL in text (SQLite stores it): the client's fault, told without the SQL."""
    exc = DataError("INSERT INTO api_keys (name) VALUES (%(name)s)", {"name": "a\x00"},
                    Exception("PostgreSQL text fields cannot contain NUL (0x00) bytes"))
    err = as_api_error(exc, request_id="req_0123")
    assert (err.status, err.type, err.code) == (400, "invalid_request_error", "invalid_value")
    assert "INSERT" not in str(err) and "PostgreSQL" not in str(err) and "req_0123" in str(err)


# -- another org's ids answer like unknown ids -----------------------------------------------------

@pytest.fixture(scope="module")
def globex(deployment) -> Planted:
    return plant(deployment, "globex", "zq7planted", deployment.checkpoints["globex-1"])


UNKNOWN = {"checkpoint": "ck_0a0a0a0a0a0a", "job": "jb_0b0b0b0b0b0b", "receipt": "fr_0c0c0c0c0c0c",
           "key_id": "987654", "source": "nosuch-wiki", "document": "876543",
           "document_name": "nosuch-plan.md"}

#: (label, method, path, JSON body) of every route taking a per-org id; ``{id}`` is the id.
ID_ROUTES = [
    ("checkpoint", "GET", "/api/orgs/acme/checkpoints/{id}", None),
    ("checkpoint", "POST", "/api/orgs/acme/checkpoints/{id}/promote", {}),
    ("checkpoint", "POST", "/api/orgs/acme/pin", {"checkpoint_id": "{id}"}),
    ("checkpoint", "POST", "/api/orgs/acme/rollback", {"checkpoint_id": "{id}"}),
    ("checkpoint", "POST", "/v1/completions", {"model": "acme@{id}", "prompt": "hi", "max_tokens": 1}),
    ("checkpoint", "POST", "/v1/chat/completions",
     {"model": "acme@{id}", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}),
    ("job", "GET", "/api/orgs/acme/jobs/{id}", None),
    ("job", "POST", "/api/orgs/acme/jobs/{id}/cancel", None),
    ("receipt", "GET", "/api/orgs/acme/receipts/{id}", None),
    ("key_id", "DELETE", "/api/orgs/acme/keys/{id}", None),
    ("source", "POST", "/api/orgs/acme/sources/{id}/test", None),
    ("source", "DELETE", "/api/orgs/acme/sources/{id}", None),
    ("document", "POST", "/api/orgs/acme/forget", {"document": "{id}", "replay": False}),
    ("receipt", "GET", "/console/orgs/acme/receipts/{id}", None),
    ("checkpoint", "GET", "/console/orgs/acme/confirm/pin?checkpoint={id}", None),
    ("checkpoint", "GET", "/console/orgs/acme/confirm/rollback?checkpoint={id}", None),
    ("document_name", "GET", "/console/orgs/acme/confirm/forget?document={id}", None),
]


def _foreign(planted: Planted, kind: str) -> str:
    if kind == "document_name":
        return f"{planted.marker}-plan.md"
    return str(getattr(planted, kind))


def _fill(value, ident: str):
    if isinstance(value, dict):
        return {k: _fill(v, ident) for k, v in value.items()}
    return value.replace("{id}", ident) if isinstance(value, str) else value


@pytest.fixture(scope="module")
def console_client(deployment) -> httpx.Client:
    with httpx.Client(base_url=deployment.url, timeout=60) as client:
        assert login(client, deployment.keys["acme-admin"]).status_code == 303
        client.get("/console/orgs")  # shows (and clears) the login's flash message
        yield client


@pytest.mark.parametrize(("kind", "method", "path", "body"), ID_ROUTES,
                         ids=[f"{m} {p.split('?')[0]} {k}" for k, m, p, _ in ID_ROUTES])
def test_a_foreign_id_answers_exactly_like_an_unknown_one(deployment, globex, console_client, kind, method,
                                                          path, body):
    foreign, unknown = _foreign(globex, kind), UNKNOWN[kind]

    def ask(ident: str) -> httpx.Response:
        kw = {"json": _fill(body, ident)} if body is not None else {}
        if path.startswith("/console"):
            return console_client.request(method, _fill(path, ident), **kw)
        return call(deployment, method, _fill(path, ident), **kw)

    seen, missing = ask(foreign), ask(unknown)
    assert missing.status_code == 404, missing.text
    assert seen.status_code == missing.status_code, seen.text
    word = re.compile(rf"(?<![\w-]){re.escape(foreign)}(?![\w-])")
    assert word.sub(unknown, seen.text) == missing.text
    assert "globex" not in seen.text
