"""``POST /v1/feedback`` and the review queue on a running server (official ``openai`` client).

Only the key that got a reply, or an admin key of its org, may attach feedback: any other response
id (another key's, another org's, unknown, expired) is the same 404. Corrections are pending until
reviewed, rate limited per key, flagged when a live document says otherwise; review is audited and
another org's admin cannot see or decide them.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from orgmem.cli.main import app as cli
from orgmem.config import get_settings
from orgmem.db.models import Chunk, Document, DocumentVersion, ResponseRecord, Source
from orgmem.db.session import session_scope
from orgmem.db.types import utcnow
from orgmem.feedback import corrections
from orgmem.feedback.responses import prune
from orgmem.feedback.settings import get_feedback_settings
from orgmem.lineage import get_org
from orgmem.lineage.audit import list_audit

QUESTION = "What is the vault code?"
_HTTP = httpx.Client(timeout=60)


def call(dep, method: str, path: str, key: str, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {dep.keys.get(key, key)}"}
    return _HTTP.request(method, f"{dep.url}{path}", headers=headers, **kw)


def ask(dep, key: str, question: str = QUESTION):
    return dep.client(key).chat.completions.create(
        model="acme", messages=[{"role": "user", "content": question}], max_tokens=6, temperature=0)


def feedback(dep, key: str, **body) -> httpx.Response:
    return call(dep, "POST", "/v1/feedback", key, json=body)


def new_key(dep, role: str = "employee") -> str:
    resp = call(dep, "POST", "/api/orgs/acme/keys", "acme-admin", json={"role": role,
                                                                        "name": f"k-{uuid.uuid4().hex[:8]}"})
    assert resp.status_code == 201, resp.text
    return resp.json()["key"]


def test_only_the_asking_key_or_its_orgs_admin_may_give_feedback(deployment):
    reply = ask(deployment, "acme-employee")
    client = deployment.client("acme-employee")
    ok = client.post("/feedback", cast_to=httpx.Response, body={"response_id": reply.id, "rating": "up"})
    assert ok.status_code == 200 and ok.json() == {"object": "feedback", "response_id": reply.id,
                                                  "rating": "up", "correction": None}
    assert feedback(deployment, "acme-admin", response_id=reply.id, rating="down").status_code == 200

    unknown = feedback(deployment, "acme-employee", response_id="chatcmpl-nope", rating="up")
    assert unknown.status_code == 404
    for key in ("globex-admin", "globex-employee", new_key(deployment)):
        refused = feedback(deployment, key, response_id=reply.id, rating="up")
        assert refused.status_code == 404, (key, refused.text)
        assert refused.json()["error"]["message"] == unknown.json()["error"]["message"].replace(
            "chatcmpl-nope", reply.id)
    assert feedback(deployment, "acme-employee", response_id=reply.id).status_code == 400  # nothing to say

    counts = call(deployment, "GET", "/api/orgs/acme/feedback", "acme-admin").json()
    assert counts["ratings"]["up"] >= 1 and counts["ratings"]["down"] >= 1


def test_expired_replies_cannot_be_named_and_records_stay_bounded(deployment):
    reply = ask(deployment, "acme-employee")
    url = deployment.settings.database_url
    with session_scope(url, write=True) as s:
        s.execute(update(ResponseRecord).where(ResponseRecord.response_id == reply.id)
                  .values(expires_at=utcnow() - timedelta(seconds=1)))
    assert feedback(deployment, "acme-employee", response_id=reply.id, rating="up").status_code == 404
    ask(deployment, "acme-employee")
    with session_scope(url, write=True) as s:
        org_id = get_org(s, "acme").id
        assert prune(s, org_id, keep=1) >= 1  # the expired one, and all but the newest
        assert s.scalar(select(func.count()).select_from(ResponseRecord)
                        .where(ResponseRecord.org_id == org_id)) == 1


def _plant_document(dep, text: str) -> None:
    with session_scope(dep.settings.database_url, write=True) as s:
        org = get_org(s, "acme")
        source = Source(org_id=org.id, name=f"wiki-{uuid.uuid4().hex[:6]}", kind="docs", config={})
        s.add(source)
        s.flush()
        doc = Document(org_id=org.id, source_id=source.id, external_id="ops/vault.md", uri="file://ops/vault.md")
        s.add(doc)
        s.flush()
        version = DocumentVersion(document_id=doc.id, content_hash=hashlib.sha256(text.encode()).hexdigest())
        s.add(version)
        s.flush()
        s.add(Chunk(org_id=org.id, document_version_id=version.id, seq=0, chunk_key=uuid.uuid4().hex,
                    text=text, status="consumed"))


@pytest.fixture
def three_an_hour(monkeypatch):
    monkeypatch.setenv("ORGMEM_FEEDBACK_CORRECTIONS_PER_HOUR", "3")
    get_feedback_settings.cache_clear()
    yield
    get_feedback_settings.cache_clear()


def test_a_flood_of_contradicting_corrections_is_limited_flagged_and_learns_nothing(deployment,
                                                                                    three_an_hour):
    _plant_document(deployment, "Vault access. The vault code is 5555 and changes every quarter.")
    flooder = new_key(deployment)
    answers = [feedback(deployment, flooder, response_id=ask(deployment, flooder).id,
                        correction=f"The vault code is {n}{n}{n}{n}.") for n in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert answers[3].json()["error"]["code"] == "correction_rate_limit_exceeded"
    assert int(answers[3].headers["Retry-After"]) > 0
    mine = {a.json()["correction"]["id"] for a in answers[:3]}

    queue = call(deployment, "GET", "/api/orgs/acme/corrections?status=pending", "acme-admin").json()
    flagged = [c for c in queue if c["id"] in mine]
    assert len(flagged) == 3
    assert all(c["conflicts_with_documents"] and c["conflicting_documents"] == ["ops/vault.md"]
               for c in flagged)
    assert "5555" in flagged[0]["conflicts"][0]["excerpt"]
    one = call(deployment, "GET", f"/api/orgs/acme/corrections/{flagged[0]['id']}", "acme-admin").json()
    assert [x["document"] for x in one["conflicts_now"]] == ["ops/vault.md"]  # still said, now
    with session_scope(deployment.settings.database_url) as s:  # nothing is material for training
        assert not {t.id for t in corrections.waiting(s, get_org(s, "acme"))} & mine
    counts = call(deployment, "GET", "/api/orgs/acme/feedback", "acme-admin").json()
    assert counts["pending_conflicting"] >= 3


def _propose(dep, key: str, text: str) -> dict:
    resp = feedback(dep, key, response_id=ask(dep, key).id, correction=text, comment="from a test")
    assert resp.status_code == 200, resp.text
    return resp.json()["correction"]


def test_review_through_api_and_cli_is_audited_and_isolated_per_org(deployment, monkeypatch):
    first = _propose(deployment, "acme-employee", "The vault code is 2468.")
    second = _propose(deployment, "acme-employee", "The vault code is 1357.")
    path = f"/api/orgs/acme/corrections/{first['id']}"
    assert call(deployment, "GET", path, "globex-admin").status_code == 403  # not its org's queue
    for method, suffix in (("GET", ""), ("POST", "/approve"), ("POST", "/reject")):
        hidden = call(deployment, method, f"/api/orgs/globex/corrections/{first['id']}{suffix}",
                      "globex-admin")
        assert hidden.status_code == 404, (method, suffix, hidden.text)
    assert first["id"] not in {c["id"] for c in call(deployment, "GET", "/api/orgs/globex/corrections",
                                                     "globex-admin").json()}
    assert call(deployment, "GET", path, "acme-employee").status_code == 403  # admins review

    shown = call(deployment, "GET", path, "acme-admin").json()
    assert shown["question"] == QUESTION and shown["proposed_answer"] == "The vault code is 2468."
    approved = call(deployment, "POST", f"{path}/approve", "acme-admin", json={"reason": "checked"})
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert call(deployment, "POST", f"{path}/reject", "acme-admin").status_code == 409  # decided already

    monkeypatch.setenv("ORGMEM_DATABASE_URL", deployment.settings.database_url)
    get_settings.cache_clear()
    runner = CliRunner()
    listed = runner.invoke(cli, ["corrections", "list", "acme", "--status", "pending"])
    assert listed.exit_code == 0 and second["id"] in listed.output and first["id"] not in listed.output
    shown_cli = runner.invoke(cli, ["corrections", "show", "acme", second["id"]])
    assert "The vault code is 1357." in shown_cli.output and "proposed" in shown_cli.output
    rejected = runner.invoke(cli, ["corrections", "reject", "acme", second["id"], "--reason", "wrong"])
    assert rejected.exit_code == 0 and "rejected" in rejected.output
    assert runner.invoke(cli, ["corrections", "approve", "globex", second["id"]]).exit_code == 2  # not found

    with session_scope(deployment.settings.database_url) as s:
        events = [(e.action, e.target, e.actor)
                  for e in list_audit(s, get_org(s, "acme").id, action="correction")]
        waiting = {t.id for t in corrections.waiting(s, get_org(s, "acme"))}
    admin = f"key:acme/admin-1({deployment.keys['acme-admin'][:12]})"
    assert ("correction.approve", first["id"], admin) in events
    assert any(a == "correction.reject" and t == second["id"] for a, t, _ in events)
    assert first["id"] in waiting and second["id"] not in waiting


def test_an_org_may_auto_approve_one_roles_corrections(deployment):
    policy = "/api/orgs/acme/feedback/policy"
    done = call(deployment, "PUT", policy, "acme-admin", json={"auto_approve_role": "admin"})
    assert done.status_code == 200
    try:
        by_admin = _propose(deployment, "acme-admin", "The vault code is 8080.")
        by_employee = _propose(deployment, "acme-employee", "The vault code is 9090.")
    finally:
        call(deployment, "PUT", policy, "acme-admin", json={"auto_approve_role": None})
    assert by_admin["status"] == "approved" and by_admin["reviewed_by"] == "auto:admin"
    assert by_employee["status"] == "pending"
    bad = call(deployment, "PUT", policy, "acme-admin", json={"auto_approve_role": "boss"})
    assert bad.status_code == 400
    with session_scope(deployment.settings.database_url) as s:
        events = [(e.action, e.target) for e in list_audit(s, get_org(s, "acme").id, action="correction")]
    assert ("correction.auto_approve", by_admin["id"]) in events
