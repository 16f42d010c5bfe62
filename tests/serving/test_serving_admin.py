"""The admin REST API (/api), its authorisation on every route, and the operations endpoints."""

from __future__ import annotations

import re
import time

import httpx
import openai
import pytest
from pydantic import SecretStr

from orgmem.app import create_app
from orgmem.config import get_settings
from orgmem.serving.config import ServeSettings

ORG_ROUTE = re.compile(r"^/api/orgs/\{org\}")
_HTTP = httpx.Client(timeout=30)  # one keep-alive connection pool for the many small calls


def call(dep, method: str, path: str, key: str | None = "acme-admin", **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {dep.keys.get(key, key)}"} if key else {}
    return _HTTP.request(method, f"{dep.url}{path}", headers=headers, **kw)


def org_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every route under /api/orgs/{org}, from the app's OpenAPI spec."""
    paths = app.openapi()["paths"]
    return [(m.upper(), p) for p, ops in paths.items() if ORG_ROUTE.match(p) for m in ops]


def fill(path: str, org: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: org if m[1] == "org" else "x1", path)


def test_every_org_route_refuses_other_orgs_employees_and_missing_keys(deployment):
    routes = org_routes(deployment.app)
    assert len(routes) >= 20
    for method, path in routes:
        for key, target, status in (("globex-admin", "acme", 403), ("acme-employee", "acme", 403),
                                    ("acme-admin", "globex", 403), ("acme-admin", "no-such-org", 403),
                                    (None, "acme", 401), ("acme-revoked", "acme", 401)):
            resp = call(deployment, method, fill(path, target), key, json={})
            assert resp.status_code == status, (method, path, key, target, resp.text)
            assert resp.json()["error"]["type"] in ("permission_error", "authentication_error")
            assert "globex" not in resp.text or target == "globex" or key == "globex-admin"


def test_org_and_checkpoint_views(deployment):
    assert call(deployment, "GET", "/api/me").json() == {
        "org": "acme", "role": "admin", "key": deployment.keys["acme-admin"][:12], "name": "admin-1",
        "groups": []}
    orgs = call(deployment, "GET", "/api/orgs", "acme-employee").json()
    assert [o["slug"] for o in orgs] == ["acme"]
    org = call(deployment, "GET", "/api/orgs/acme").json()
    assert org["served_checkpoint_id"] == deployment.checkpoints["acme-2"]
    tree = call(deployment, "GET", "/api/orgs/acme/checkpoints").json()
    assert [n["id"] for n in tree] == [deployment.checkpoints["acme-1"], deployment.checkpoints["acme-2"]]
    assert [n["depth"] for n in tree] == [0, 1]
    one = call(deployment, "GET", f"/api/orgs/acme/checkpoints/{deployment.checkpoints['acme-1']}").json()
    objects = {o["name"]: o for o in one["objects"]}
    assert len(objects["memory.safetensors"]["sha256"]) == 64
    foreign = call(deployment, "GET", f"/api/orgs/acme/checkpoints/{deployment.checkpoints['globex-1']}")
    assert foreign.status_code == 404 and "globex" not in foreign.text  # as if unknown: no id oracle
    assert call(deployment, "GET", "/api/orgs/acme/checkpoints/ck_missing").status_code == 404


def test_pin_unpin_rollback_history_and_refusals(deployment):
    ck1, ck2 = deployment.checkpoints["acme-1"], deployment.checkpoints["acme-2"]
    pinned = call(deployment, "POST", "/api/orgs/acme/pin", json={"checkpoint_id": ck1, "reason": "audit"})
    assert pinned.status_code == 200 and pinned.json()["served_checkpoint_id"] == ck1
    again = call(deployment, "POST", "/api/orgs/acme/pin", json={"checkpoint_id": ck1})
    assert again.status_code == 409 and "already pinned" in again.json()["error"]["message"]
    assert call(deployment, "POST", "/api/orgs/acme/unpin").json()["served_checkpoint_id"] == ck2
    missing = call(deployment, "POST", "/api/orgs/acme/pin", json={"checkpoint_id": "ck_nope"})
    assert missing.status_code == 404 and "ck_nope" in missing.text
    bad = call(deployment, "POST", "/api/orgs/acme/pin", json={})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "checkpoint_id"
    rolled = call(deployment, "POST", "/api/orgs/acme/rollback", json={"checkpoint_id": ck1, "reason": "bad"})
    assert rolled.status_code == 200 and rolled.json()["abandoned"] == [ck2]
    ahead = call(deployment, "POST", "/api/orgs/acme/rollback", json={"checkpoint_id": ck2})
    assert ahead.status_code == 409 and "not an ancestor" in ahead.json()["error"]["message"]
    restored = call(deployment, "POST", f"/api/orgs/acme/checkpoints/{ck2}/promote", json={})
    assert restored.json()["head_checkpoint_id"] == ck2
    history = call(deployment, "GET", "/api/orgs/acme/history").json()
    actions = [e["action"] for e in history if e["actor"].startswith("key:acme/")]
    assert actions == ["pin", "unpin", "rollback", "promote"]
    assert all(e["actor"] == f"key:acme/admin-1({deployment.keys['acme-admin'][:12]})" for e in history[-4:])
    at = call(deployment, "GET", "/api/orgs/acme/history", params={"at": history[-4]["at"]}).json()
    assert at["served_checkpoint_id"] == ck1


def test_keys_through_the_api(deployment):
    made = call(deployment, "POST", "/api/orgs/acme/keys", json={"role": "employee", "name": "bot"})
    assert made.status_code == 201
    key = made.json()["key"]
    assert deployment.client(key).models.list().data[0].id == "acme"
    listed = call(deployment, "GET", "/api/orgs/acme/keys").json()
    assert "bot" in [k["name"] for k in listed]
    assert all("key" not in k and "key_hash" not in k for k in listed)
    bad = call(deployment, "POST", "/api/orgs/acme/keys", json={"role": "owner"})
    assert bad.status_code == 400 and "owner" in bad.text
    revoked = call(deployment, "DELETE", f"/api/orgs/acme/keys/{made.json()['id']}")
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    with pytest.raises(openai.AuthenticationError, match="revoked"):
        deployment.client(key).models.list()
    assert call(deployment, "DELETE", f"/api/orgs/acme/keys/{made.json()['id']}").status_code == 409
    assert call(deployment, "DELETE", "/api/orgs/acme/keys/99999").status_code == 404


def test_creating_orgs_needs_the_operator_key(deployment):
    assert call(deployment, "POST", "/api/orgs", json={"slug": "initech"}).status_code == 403
    deployment.state.serve.operator_key = SecretStr("op-secret-123")
    try:
        assert call(deployment, "POST", "/api/orgs", "wrong", json={"slug": "initech"}).status_code == 403
        created = call(deployment, "POST", "/api/orgs", "op-secret-123", json={"slug": "initech"})
        assert created.status_code == 201 and created.json()["slug"] == "initech"
        dup = call(deployment, "POST", "/api/orgs", "op-secret-123", json={"slug": "initech"})
        assert dup.status_code == 409
        invalid = call(deployment, "POST", "/api/orgs", "op-secret-123", json={"slug": "Not Valid"})
        assert invalid.status_code == 400 and "invalid org slug" in invalid.text
    finally:
        deployment.state.serve.operator_key = None


def test_sources_jobs_and_schedule_routes(deployment, monkeypatch):
    # the job and schedule functions read the configured database: point them at this deployment's
    for name, value in (("ORGMEM_DATABASE_URL", deployment.settings.database_url),
                        ("ORGMEM_STORE_URL", deployment.settings.store_url)):
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    assert call(deployment, "GET", "/api/orgs/acme/sources").json() == []
    bad = call(deployment, "POST", "/api/orgs/acme/sources", json={"kind": "fax", "name": "f", "config": {}})
    assert bad.status_code in (400, 404) and "fax" in bad.text
    queued = call(deployment, "POST", "/api/orgs/acme/sync", json={})
    assert queued.status_code == 202, queued.text
    job_id = queued.json()["job_id"]
    jobs = call(deployment, "GET", "/api/orgs/acme/jobs").json()
    assert [j["id"] for j in jobs] == [job_id]
    assert call(deployment, "GET", f"/api/orgs/globex/jobs/{job_id}", "globex-admin").status_code == 404
    shown = call(deployment, "GET", f"/api/orgs/acme/jobs/{job_id}").json()
    assert shown["status"] == "queued" and shown["events"]
    assert call(deployment, "POST", f"/api/orgs/acme/jobs/{job_id}/cancel").json()["status"] == "cancelled"
    schedule = call(deployment, "PUT", "/api/orgs/acme/schedule", json={"cron": "0 2 * * *",
                                                                       "timezone": "Europe/Oslo"})
    assert schedule.status_code == 200, schedule.text
    assert schedule.json()["enabled"] is True and schedule.json()["timezone"] == "Europe/Oslo"
    assert call(deployment, "DELETE", "/api/orgs/acme/schedule").json()["enabled"] is False
    bad_cron = call(deployment, "PUT", "/api/orgs/acme/schedule", json={"cron": "every night"})
    assert bad_cron.status_code == 400


def test_openapi_spec_lists_the_api(deployment):
    spec = httpx.get(f"{deployment.url}/openapi.json").json()
    paths = set(spec["paths"])
    for path in ("/v1/models", "/v1/chat/completions", "/v1/completions", "/api/orgs/{org}/pin",
                 "/api/orgs/{org}/unpin", "/api/orgs/{org}/rollback", "/api/orgs/{org}/history",
                 "/api/orgs/{org}/checkpoints", "/api/orgs/{org}/keys", "/api/orgs/{org}/sources",
                 "/api/orgs/{org}/sync", "/api/orgs/{org}/consolidate", "/api/orgs/{org}/jobs",
                 "/api/orgs/{org}/schedule", "/healthz", "/readyz", "/metrics"):
        assert path in paths, path
    assert "orgmem API key" in spec["components"]["securitySchemes"]


def test_health_readiness_and_metrics(deployment):
    assert httpx.get(f"{deployment.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{deployment.url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "store": "ok", "model": "ok"}
    deployment.client("acme-employee").completions.create(model="acme", prompt="hi", max_tokens=2)
    metrics = httpx.get(f"{deployment.url}/metrics").text
    for family in ("orgmem_requests_total", "orgmem_request_seconds", "orgmem_tokens_total",
                   "orgmem_loaded_memories", "orgmem_loaded_orgs", "orgmem_swaps_total",
                   "orgmem_time_to_first_token_seconds", "orgmem_engine_batch_size"):
        assert f"# TYPE {family}" in metrics
    assert 'orgmem_tokens_total{kind="completion",org="acme"}' in metrics
    assert re.search(r"^orgmem_loaded_orgs \d", metrics, re.M)


def test_rate_limit_answers_429_with_retry_after(deployment, tiny_base, run_server):
    app = create_app(deployment.settings, ServeSettings(rate_limit_per_minute=6, rate_limit_burst=2),
                     base=tiny_base)
    url = run_server(app)
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=deployment.keys["acme-employee"], max_retries=0)
    client.models.list()
    client.models.list()
    with pytest.raises(openai.RateLimitError) as err:
        client.models.list()
    assert err.value.response.headers["retry-after"] == "10"
    other = openai.OpenAI(base_url=f"{url}/v1", api_key=deployment.keys["globex-employee"], max_retries=0)
    assert other.models.list().data[0].id == "globex"  # limits are per key


def test_unloadable_base_is_reported_not_hidden(deployment, run_server):
    settings = deployment.settings.model_copy(update={"base_model": "/no/such/model"})
    app = create_app(settings, ServeSettings())
    url = run_server(app, wait=False)
    deadline = time.monotonic() + 30
    while app.state.serving.load_error is None and time.monotonic() < deadline:
        time.sleep(0.05)
    ready = httpx.get(f"{url}/readyz")
    assert ready.status_code == 503 and "failed to load" in ready.json()["checks"]["model"]
    assert "no/such/model" not in ready.text  # a local model folder is a path of the server: log only
    with pytest.raises(openai.InternalServerError, match="failed to load") as err:
        openai.OpenAI(base_url=f"{url}/v1", api_key=deployment.keys["acme-employee"], max_retries=0
                      ).completions.create(model="acme", prompt="hi", max_tokens=1)
    assert "no/such/model" not in err.value.response.text
