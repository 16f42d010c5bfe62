"""The console through FastAPI's TestClient: every page renders, the key rules of ``/api`` hold,
forms without the CSRF token are refused, and each action changes the org's state."""

from __future__ import annotations

import html

import pytest

from orgmem.console.charts import line_chart
from orgmem.console.security import CSRF_COOKIE, KEY_COOKIE
from orgmem.db.models import Checkpoint, Chunk, Job
from orgmem.db.session import session_scope
from orgmem.keys import revoke_key
from tests.console.conftest import act, flash_of, login, org_row


@pytest.fixture
def admin(console):
    client, dep, data = console
    assert login(client, dep.keys["acme-admin"]).status_code == 303
    return client, dep, data


# -- login and the key rules ---------------------------------------------------------------------

def test_without_a_key_every_page_sends_to_login(console):
    client, _, _ = console
    for path in ("/console", "/console/orgs", "/console/orgs/acme", "/console/orgs/acme/checkpoints"):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/console/login", path
    form = client.get("/console/login")
    assert form.status_code == 200 and 'name="api_key"' in form.text
    assert "default-src 'self'" in form.headers["content-security-policy"]


def test_login_sets_an_httponly_strict_cookie_and_lands_on_the_org(console):
    client, dep, _ = console
    response = login(client, dep.keys["acme-admin"])
    assert response.status_code == 303 and response.headers["location"] == "/console/orgs/acme"
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(KEY_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "logged in to acme" in client.get("/console/orgs/acme").text


def test_wrong_key_is_401_with_a_message_and_no_cookie(console):
    client, dep, _ = console
    response = login(client, "omk_" + "x" * 43)
    assert response.status_code == 401
    assert "invalid API key" in response.text and 'name="api_key"' in response.text
    assert KEY_COOKIE not in client.cookies
    revoked = login(client, dep.keys["acme-revoked"])
    assert revoked.status_code == 401 and "was revoked" in revoked.text


def test_employee_key_gets_403(console):
    client, dep, _ = console
    response = login(client, dep.keys["acme-employee"])
    assert response.status_code == 403 and "employee key" in response.text
    assert KEY_COOKIE not in client.cookies


def test_login_without_csrf_token_is_refused(console):
    client, dep, _ = console
    client.get("/console/login")
    response = client.post("/console/login", data={"api_key": dep.keys["acme-admin"]})
    assert response.status_code == 403 and "CSRF" in response.text
    assert KEY_COOKIE not in client.cookies


def test_another_orgs_pages_and_actions_are_403(admin):
    client, dep, _ = admin
    assert client.get("/console/orgs/globex").status_code == 403
    assert client.get("/console/orgs/globex/checkpoints").status_code == 403
    token = client.cookies[CSRF_COOKIE]
    refused = client.post("/console/orgs/globex/actions/pin",
                          data={"csrf_token": token, "checkpoint": dep.checkpoints["globex-1"]})
    assert refused.status_code == 403 and "no access to org 'globex'" in html.unescape(refused.text)
    assert org_row(dep, "globex")["pinned"] is None


def test_a_revoked_key_is_refused_on_the_next_page(admin):
    client, dep, _ = admin
    with session_scope(dep.settings.database_url, write=True) as s:
        revoke_key(s, "acme", dep.keys["acme-admin"][:12], actor="test")
    response = client.get("/console/orgs/acme")
    assert response.status_code == 401 and "was revoked" in response.text


def test_logout_forgets_the_key(admin):
    client, _, _ = admin
    token = client.cookies[CSRF_COOKIE]
    assert client.post("/console/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/console/orgs").headers["location"] == "/console/login"


# -- pages ---------------------------------------------------------------------------------------

def test_every_page_renders(admin):
    client, dep, data = admin
    ck1, ck2 = dep.checkpoints["acme-1"], dep.checkpoints["acme-2"]
    orgs = client.get("/console/orgs")
    assert orgs.status_code == 200 and 'href="/console/orgs/acme"' in orgs.text and "globex" not in orgs.text
    overview = client.get("/console/orgs/acme").text
    assert 'id="sources"' in overview and "pending.md" in overview and "secret.md" in overview
    assert 'data-refresh="/console/orgs/acme/jobs"' in overview
    tree = client.get("/console/orgs/acme/checkpoints").text
    for ck in (ck1, ck2, data.candidate):
        assert f'id="ck-{ck}"' in tree
    served_node = tree.split(f'id="ck-{ck2}"')[0].rsplit("<div", 1)[1]
    assert "served" in served_node  # the served marker is on acme-2 ...
    assert "served" not in tree.split(f'id="ck-{ck1}"')[0].rsplit("<div", 1)[1]  # ... only
    nested = [tree.index(f'id="ck-{ck}"') for ck in (ck1, ck2, data.candidate)]
    assert nested == sorted(nested) and tree.count("<ul>") == 2  # each child in a list under its parent
    assert tree.count("<polyline") >= 4 and 'data-metric="new_cloze_recall"' in tree
    assert f"/confirm/rollback?checkpoint={ck1}" in tree and f"/confirm/rollback?checkpoint={ck2}" not in tree
    history = client.get("/console/orgs/acme/history").text
    assert f"<code>{ck2}</code>" in history and "promote" in history
    chat = client.get(f"/console/orgs/acme/chat?model=acme@{ck1}").text
    assert f'value="acme@{ck1}" selected' in chat and 'id="chat-form"' in chat
    for action, query in (("sync", {}), ("consolidate", {}), ("pin", {"checkpoint": ck1}), ("unpin", {}),
                          ("rollback", {"checkpoint": ck1}), ("forget", {"document": "secret.md"})):
        page = client.get(f"/console/orgs/acme/confirm/{action}", params=query)
        assert page.status_code == 200 and f'action="/console/orgs/acme/actions/{action}"' in page.text
    assert "secret.md" in client.get("/console/orgs/acme/confirm/forget?document=secret.md").text
    assert client.get("/console/static/console.css").headers["content-type"].startswith("text/css")
    assert client.get("/console/static/console.js").status_code == 200
    assert client.get("/console/static/..%2Fpages.py").status_code == 404


def test_confirm_pages_refuse_unknown_things(admin):
    client, dep, _ = admin
    assert client.get("/console/orgs/acme/confirm/explode").status_code == 404
    missing = client.get("/console/orgs/acme/confirm/pin?checkpoint=ck_nope")
    assert missing.status_code == 404 and "ck_nope" in missing.text
    foreign = client.get(f"/console/orgs/acme/confirm/pin?checkpoint={dep.checkpoints['globex-1']}")
    assert foreign.status_code == 404 and "globex" not in foreign.text  # as if unknown: no id oracle
    assert client.get("/console/orgs/acme/confirm/forget?document=nothing.md").status_code == 404


# -- actions -------------------------------------------------------------------------------------

def test_actions_without_the_csrf_token_change_nothing(admin):
    client, dep, _ = admin
    ck1 = dep.checkpoints["acme-1"]
    for data in ({"checkpoint": ck1}, {"checkpoint": ck1, "csrf_token": "forged"}):
        response = client.post("/console/orgs/acme/actions/pin", data=data)
        assert response.status_code == 403 and "CSRF" in response.text
    assert org_row(dep)["pinned"] is None


def test_pin_and_unpin(admin):
    client, dep, _ = admin
    ck1 = dep.checkpoints["acme-1"]
    page = flash_of(client, act(client, "pin", checkpoint=ck1, reason="known good"))
    assert f"pinned {ck1}" in page and 'class="flash ok"' in page
    assert org_row(dep)["pinned"] == ck1 and org_row(dep)["served"] == ck1
    assert "known good" in client.get("/console/orgs/acme/history").text
    page = flash_of(client, act(client, "unpin"))
    assert "unpinned" in page and org_row(dep)["pinned"] is None
    again = flash_of(client, act(client, "unpin"))  # refused by the library: shown, nothing changes
    assert 'class="flash error"' in again and "no pinned checkpoint" in again


def test_rollback_needs_a_reason_and_moves_the_head(admin):
    client, dep, _ = admin
    ck1, ck2 = dep.checkpoints["acme-1"], dep.checkpoints["acme-2"]
    refused = flash_of(client, act(client, "rollback", checkpoint=ck1, reason=" "))
    assert "needs a reason" in refused and org_row(dep)["head"] == ck2
    page = flash_of(client, act(client, "rollback", checkpoint=ck1, reason="bad night"))
    assert f"rolled back to {ck1}" in page
    assert org_row(dep)["head"] == ck1 and org_row(dep)["served"] == ck1
    history = client.get("/console/orgs/acme/history").text
    assert "rollback" in history and "bad night" in history


def test_sync_and_consolidate_queue_jobs(admin):
    client, dep, _ = admin
    assert "sync queued as job" in flash_of(client, act(client, "sync"))
    assert "consolidation queued as job" in flash_of(client, act(client, "consolidate"))
    with session_scope(dep.settings.database_url) as s:
        jobs = {j.kind: j.id for j in s.query(Job).all()}
    assert set(jobs) == {"sync", "consolidate"}
    table = client.get("/console/orgs/acme/jobs").text
    assert all(f'data-job="{job}"' in table for job in jobs.values()) and "<progress" in table
    twice = flash_of(client, act(client, "consolidate"))  # one consolidation per org at a time
    assert 'class="flash error"' in twice and jobs["consolidate"] in twice


def test_forget_quarantines_what_saw_the_document(admin):
    client, dep, data = admin
    page = flash_of(client, act(client, "forget", document="secret.md", reason="leaked"))
    assert "forgot 'secret.md'" in page and data.candidate in page
    with session_scope(dep.settings.database_url) as s:
        assert s.get(Checkpoint, data.candidate).status == "quarantined"
        statuses = {c.text: c.status for c in s.query(Chunk).all()}
    assert statuses == {"secret": "excluded", "pending": "pending"}
    assert org_row(dep)["head"] == dep.checkpoints["acme-2"]  # the candidate was not on the head's line


def test_unknown_action_is_404(admin):
    client, _, _ = admin
    token = client.cookies[CSRF_COOKIE]
    response = client.post("/console/orgs/acme/actions/explode", data={"csrf_token": token})
    assert response.status_code == 404


# -- chat ----------------------------------------------------------------------------------------

def chat(client, model: str, text: str = "The vault code is", token: str | None = None):
    headers = {"Accept": "application/json", "X-CSRF-Token": token or client.cookies[CSRF_COOKIE]}
    body = {"model": model, "max_tokens": 4, "messages": [{"role": "user", "content": text}]}
    return client.post("/console/orgs/acme/chat", headers=headers, json=body)


def test_chat_answers_from_the_chosen_checkpoint(admin):
    client, dep, _ = admin
    ck1, ck2 = dep.checkpoints["acme-1"], dep.checkpoints["acme-2"]
    first = chat(client, f"acme@{ck1}")
    assert first.status_code == 200, first.text
    assert first.json()["checkpoint"].endswith(ck1) and isinstance(first.json()["reply"], str)
    served = chat(client, "acme")
    assert served.status_code == 200 and served.json()["checkpoint"].endswith(ck2)


def test_chat_refusals(admin):
    client, dep, _ = admin
    assert chat(client, "acme", token="forged").status_code == 403
    other = chat(client, f"globex@{dep.checkpoints['globex-1']}")
    assert other.status_code == 400 and "globex" in other.json()["error"]["message"]
    empty = client.post("/console/orgs/acme/chat", json={"model": "acme", "messages": []},
                        headers={"X-CSRF-Token": client.cookies[CSRF_COOKIE], "Accept": "application/json"})
    assert empty.status_code == 400


# -- charts --------------------------------------------------------------------------------------

def test_line_chart_breaks_the_line_at_missing_values():
    chart = line_chart("recall", "r", [("a", 0.1), ("b", None), ("c", 0.3), ("d", 0.2)])
    assert [p.label for p in chart.points] == ["a", "c", "d"]
    assert len(chart.segments) == 2 and len(chart.segments[1].split()) == 2
    top = min(chart.points, key=lambda p: p.y)
    assert top.label == "c"  # the largest value is drawn highest
    assert line_chart("kl", "kl", [("a", None)]).empty
