"""Recorded conversations on a running server (issue 17), through the official ``openai`` client:
off by default, enabled per org by an admin (audited), each chat turn recorded with its key's
audience and governed, listed and deleted by its own key only; other keys and orgs get 404."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from orgmem.db.models import AuditEvent, ConversationTurn, Document
from orgmem.db.session import session_scope
from orgmem.keys import create_key

AWS_ID = "AKIAQ3EGRTYU7XNPLM2Z"
_HTTP = httpx.Client(timeout=60)


def call(dep, method: str, path: str, key: str, **kw) -> httpx.Response:
    auth = {"Authorization": f"Bearer {dep.keys.get(key, key)}"}
    return _HTTP.request(method, f"{dep.url}{path}", headers=auth, **kw)


def chat(dep, key: str, content: str, **kw):
    return dep.client(key).chat.completions.create(model="acme", max_tokens=4, temperature=0,
                                                   messages=[{"role": "user", "content": content}], **kw)


def own_turns(dep, key: str, **params) -> dict:
    response = call(dep, "GET", "/v1/conversations/turns", key, params=params)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def keys(deployment):
    """A group key (eng) and a second org-level employee key of acme."""
    with session_scope(deployment.settings.database_url, write=True) as s:
        deployment.keys["acme-eng"] = create_key(s, "acme", "employee", "eng-dev", groups=["eng"],
                                                 actor="test").key
        deployment.keys["acme-other"] = create_key(s, "acme", "employee", "other", actor="test").key
    return deployment


def _db_turn(dep, turn_id: str) -> tuple[ConversationTurn, Document]:
    with session_scope(dep.settings.database_url) as s:
        turn = s.get(ConversationTurn, turn_id)
        s.expunge(turn)
        doc = s.get(Document, turn.document_id)
        s.expunge(doc)
        return turn, doc


def test_recording_is_off_by_default_then_an_admin_enables_it(keys):
    dep = keys
    policy = call(dep, "GET", "/api/orgs/acme/conversations", "acme-admin").json()
    assert policy["enabled"] is False
    chat(dep, "acme-employee", "Is anything recorded while it is off?")
    assert own_turns(dep, "acme-employee")["data"] == []
    with session_scope(dep.settings.database_url) as s:
        assert s.scalar(select(ConversationTurn.id)) is None

    refused = call(dep, "PUT", "/api/orgs/acme/conversations", "acme-employee", json={"enabled": True})
    assert refused.status_code == 403
    enabled = call(dep, "PUT", "/api/orgs/acme/conversations", "acme-admin",
                   json={"enabled": True, "retention_days": 14})
    assert enabled.status_code == 200 and enabled.json()["enabled"] and enabled.json()["retention_days"] == 14
    with session_scope(dep.settings.database_url) as s:
        actor = s.scalar(select(AuditEvent.actor).where(AuditEvent.action == "conversations.enable"))
        assert actor.startswith("key:acme/")


def test_a_chat_turn_is_recorded_with_the_keys_audience_and_secrets_redacted(keys):
    dep = keys
    reply = chat(dep, "acme-eng", f"The staging deploy key is {AWS_ID}, where should it live?")
    page = own_turns(dep, "acme-eng")
    assert len(page["data"]) == 1
    turn = page["data"][0]
    assert turn["audience"] == "eng" and turn["response_id"] == reply.id
    assert AWS_ID not in turn["text"] and "[REDACTED:" in turn["text"]
    assert "where should it live?" in turn["text"]
    row, doc = _db_turn(dep, turn["id"])
    assert doc.audience == "eng" and doc.external_id == f"turn/{turn['id']}"

    org_turn = chat(dep, "acme-employee", "What is the vault code?")
    mine = own_turns(dep, "acme-employee")["data"]
    assert [t["response_id"] for t in mine] == [org_turn.id] and mine[0]["audience"] == "org"


def test_streamed_chat_is_recorded_and_text_completions_are_not(keys):
    dep = keys
    before = len(own_turns(dep, "acme-other")["data"])
    dep.client("acme-other").completions.create(model="acme", prompt="The vault code is", max_tokens=3)
    assert len(own_turns(dep, "acme-other")["data"]) == before, "a text completion is never a conversation"
    chunks = list(chat(dep, "acme-other", "Tell me about Heron.", stream=True))
    assert [t["response_id"] for t in own_turns(dep, "acme-other")["data"]] == [chunks[0].id]


def test_each_key_lists_only_its_own_turns_and_cannot_delete_anothers(keys):
    dep = keys
    eng_turn = own_turns(dep, "acme-eng")["data"][0]["id"]
    assert eng_turn not in {t["id"] for t in own_turns(dep, "acme-employee")["data"]}
    assert own_turns(dep, "globex-employee")["data"] == []
    for key in ("acme-employee", "globex-employee", "globex-admin"):
        response = call(dep, "DELETE", f"/v1/conversations/turns/{eng_turn}", key)
        assert response.status_code == 404, (key, response.text)
        assert response.json()["error"]["message"] == f"conversation turn '{eng_turn}' not found"
    unknown = call(dep, "DELETE", "/v1/conversations/turns/turn_0000", "acme-eng")
    assert unknown.status_code == 404
    assert call(dep, "GET", "/api/orgs/acme/conversations/turns", "globex-admin").status_code == 403
    admin = call(dep, "GET", "/api/orgs/acme/conversations/turns", "acme-admin").json()
    assert eng_turn in {t["id"] for t in admin["data"]} and all("key_id" in t for t in admin["data"])


def test_deleting_a_turn_forgets_it_with_a_receipt(keys):
    dep = keys
    turn_id = own_turns(dep, "acme-eng")["data"][0]["id"]
    response = call(dep, "DELETE", f"/v1/conversations/turns/{turn_id}", "acme-eng")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["deleted"] and body["receipt"]["document"] == f"turn/{turn_id}"
    assert body["receipt"]["actor"].startswith("key:acme/eng-dev")
    receipt = call(dep, "GET", f"/api/orgs/acme/receipts/{body['receipt']['id']}", "acme-admin")
    assert receipt.status_code == 200 and receipt.json()["source"] == "conversations"
    assert own_turns(dep, "acme-eng")["data"] == []
    row, _ = _db_turn(dep, turn_id)
    assert row.text is None and row.receipt_id == body["receipt"]["id"]
    again = call(dep, "DELETE", f"/v1/conversations/turns/{turn_id}", "acme-eng")
    assert again.status_code == 404

    other = own_turns(dep, "acme-other")["data"][0]["id"]
    by_admin = call(dep, "DELETE", f"/api/orgs/acme/conversations/turns/{other}", "acme-admin",
                    params={"reason": "asked by the user"})
    assert by_admin.status_code == 200 and by_admin.json()["receipt"]["reason"] == "asked by the user"
    pruned = call(dep, "POST", "/api/orgs/acme/conversations/prune", "acme-admin")
    assert pruned.status_code == 200 and pruned.json()["deleted"] == 0, "nothing is 14 days old"
    assert call(dep, "POST", "/api/orgs/acme/conversations/prune", "acme-employee").status_code == 403
    disabled = call(dep, "PUT", "/api/orgs/acme/conversations", "acme-admin", json={"enabled": False})
    assert disabled.json()["enabled"] is False
    chat(dep, "acme-other", "Recorded after it was switched off?")
    assert own_turns(dep, "acme-other")["data"] == []
