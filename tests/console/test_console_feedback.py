"""The console's review queue and the chat's feedback buttons (through FastAPI's TestClient)."""

from __future__ import annotations

import hashlib
import html
import re

from orgmem.console.security import CSRF_COOKIE
from orgmem.db.models import Chunk, Correction, Document, DocumentVersion, Source
from orgmem.db.session import session_scope
from orgmem.lineage import get_org
from orgmem.lineage.audit import list_audit
from tests.console.conftest import csrf_of, login

QUESTION = "What is the vault code?"


def _chat(client) -> dict:
    headers = {"Accept": "application/json", "X-CSRF-Token": client.cookies[CSRF_COOKIE]}
    body = {"model": "acme", "max_tokens": 4, "messages": [{"role": "user", "content": QUESTION}]}
    reply = client.post("/console/orgs/acme/chat", headers=headers, json=body)
    assert reply.status_code == 200, reply.text
    return reply.json()


def _feedback(client, token: str | None = None, **body):
    headers = {"Accept": "application/json", "X-CSRF-Token": token or client.cookies[CSRF_COOKIE]}
    return client.post("/console/orgs/acme/feedback", headers=headers, json=body)


def _plant(dep) -> None:
    text = "The vault code is 5555, rotated every quarter."
    with session_scope(dep.settings.database_url, write=True) as s:
        org = get_org(s, "acme")
        source = Source(org_id=org.id, name="vault-wiki", kind="docs", config={})
        s.add(source)
        s.flush()
        doc = Document(org_id=org.id, source_id=source.id, external_id="ops/vault.md")
        s.add(doc)
        s.flush()
        version = DocumentVersion(document_id=doc.id, content_hash=hashlib.sha256(text.encode()).hexdigest())
        s.add(version)
        s.flush()
        s.add(Chunk(org_id=org.id, document_version_id=version.id, seq=0, chunk_key="vault-1", text=text))


def test_chat_thumbs_and_correct_it_then_review_on_the_corrections_page(console):
    client, dep, _ = console
    _plant(dep)
    assert login(client, dep.keys["acme-admin"]).status_code == 303
    reply = _chat(client)
    assert reply["response_id"].startswith("chatcmpl-")
    rated = _feedback(client, response_id=reply["response_id"], rating="up")
    assert rated.status_code == 200 and rated.json()["rating"] == "up"
    assert _feedback(client, token="forged", response_id=reply["response_id"], rating="up").status_code == 403
    assert _feedback(client, response_id="chatcmpl-unknown", rating="up").status_code == 404
    fixes = [_feedback(client, response_id=_chat(client)["response_id"], rating="down",
                       correction=f"The vault code is {v}.").json()["correction"] for v in ("2468", "1357")]
    assert [f["status"] for f in fixes] == ["pending", "pending"]

    page = client.get("/console/orgs/acme/corrections")
    assert page.status_code == 200
    text = html.unescape(page.text)
    for f in fixes:
        row = re.search(rf'<tr data-correction="{f["id"]}" data-conflicting="(\w+)">(.*?)</tr>', text, re.S)
        assert row and row.group(1) == "yes", f["id"]
        cells = row.group(2)
        assert QUESTION in cells and f["proposed_answer"] in cells and "ops/vault.md" in cells
        assert f["model_answer"] in cells and "key:acme/admin-1" in cells
    assert "Ratings: 1 up, 2 down" in text

    token = csrf_of(page.text)
    assert client.post(f"/console/orgs/acme/corrections/{fixes[0]['id']}/approve",
                       data={"reason": "checked"}).status_code == 403  # no CSRF token
    approved = client.post(f"/console/orgs/acme/corrections/{fixes[0]['id']}/approve",
                           data={"csrf_token": token, "reason": "checked"})
    assert approved.status_code == 303
    assert "approved correction" in html.unescape(client.get(approved.headers["location"]).text)
    client.post(f"/console/orgs/acme/corrections/{fixes[1]['id']}/reject", data={"csrf_token": token})
    again = client.post(f"/console/orgs/acme/corrections/{fixes[1]['id']}/approve",
                        data={"csrf_token": token})
    assert "review failed" in html.unescape(client.get(again.headers["location"]).text)

    with session_scope(dep.settings.database_url) as s:
        status = {c.id: c.status for c in s.query(Correction).all()}
        events = [(e.action, e.target) for e in list_audit(s, get_org(s, "acme").id, action="correction")]
    assert status == {fixes[0]["id"]: "approved", fixes[1]["id"]: "rejected"}
    assert events == [("correction.approve", fixes[0]["id"]), ("correction.reject", fixes[1]["id"])]


def test_another_orgs_admin_cannot_see_or_decide_the_queue(console):
    client, dep, _ = console
    assert login(client, dep.keys["acme-admin"]).status_code == 303
    fix = _feedback(client, response_id=_chat(client)["response_id"],
                    correction="The vault code is 2468.").json()["correction"]
    client.cookies.clear()
    assert login(client, dep.keys["globex-admin"]).status_code == 303
    assert client.get("/console/orgs/acme/corrections").status_code == 403
    own = client.get("/console/orgs/globex/corrections")
    assert own.status_code == 200 and fix["id"] not in own.text
    tried = client.post(f"/console/orgs/globex/corrections/{fix['id']}/approve",
                        data={"csrf_token": csrf_of(own.text)})
    assert "has no correction" in html.unescape(client.get(tried.headers["location"]).text)
    with session_scope(dep.settings.database_url) as s:
        assert s.get(Correction, fix["id"]).status == "pending"
