"""The installation operator in the console: logs in with ORGMEM_SERVE_OPERATOR_KEY, sees every
org with its sources, pending data and last job, reads each org's pages, and changes nothing:
on ``/api`` that key only creates orgs, so the console gives it no action, chat or group lineage."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient

from orgmem.app import create_app
from orgmem.console.security import CSRF_COOKIE, KEY_COOKIE
from tests.console.conftest import OPERATOR_KEY, login, org_row, serve_settings


@pytest.fixture
def operator(console):
    client, dep, data = console
    response = login(client, OPERATOR_KEY)
    assert response.status_code == 303 and response.headers["location"] == "/console/orgs"
    return client, dep, data


def cells(page: str, org: str) -> dict[str, str]:
    """The orgs table's counted cells of ``org``'s row, as text."""
    row = page.split(f'data-org="{org}"')[1].split("</tr>")[0]
    found = re.findall(r'data-col="([a-z-]+)">(.*?)</td>', row, flags=re.S)
    return {name: " ".join(re.sub(r"<[^>]+>", " ", text).split()) for name, text in found}


def test_operator_sees_every_org_with_sources_pending_and_last_job(operator):
    from orgmem.ops.jobs import create_sync

    client, _, _ = operator
    create_sync("globex", actor="test")
    page = client.get("/console/orgs")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "installation operator" in text and "read-only" in text
    assert 'href="/console/orgs/acme"' in text and 'href="/console/orgs/globex"' in text
    acme, globex = cells(text, "acme"), cells(text, "globex")
    assert acme == {"sources": "1", "pending": "2", "last-job": "none"}  # pending.md and secret.md
    assert globex["sources"] == "0" and globex["pending"] == "0"
    assert globex["last-job"].startswith("sync queued"), globex


def test_operator_reads_each_orgs_pages_without_any_action(operator):
    client, dep, _ = operator
    for org in ("acme", "globex"):
        for tab in ("", "/checkpoints", "/history", "/audit", "/receipts", "/jobs"):
            page = client.get(f"/console/orgs/{org}{tab}")
            assert page.status_code == 200, (org, tab, page.text)
            for control in ('id="action-sync"', 'data-action="pin"', 'data-action="rollback"', "/confirm/",
                            'id="forget"', "/chat"):
                assert control not in page.text, (org, tab, control)
    overview = client.get("/console/orgs/acme").text
    assert 'id="read-only"' in overview and "pending.md" in overview
    tree = client.get("/console/orgs/acme/checkpoints").text
    assert f'id="ck-{dep.checkpoints["acme-2"]}"' in tree


def test_operator_actions_chat_and_confirm_pages_are_refused(operator):
    client, dep, _ = operator
    ck1 = dep.checkpoints["acme-1"]
    before = org_row(dep)
    token = client.cookies[CSRF_COOKIE]
    for action, form in (("pin", {"checkpoint": ck1}), ("rollback", {"checkpoint": ck1, "reason": "x"}),
                         ("sync", {}), ("forget", {"document": "secret.md"})):
        refused = client.post(f"/console/orgs/acme/actions/{action}", data={"csrf_token": token, **form})
        assert refused.status_code == 403 and "only reads" in html.unescape(refused.text), action
        assert client.get(f"/console/orgs/acme/confirm/{action}", params=form).status_code == 403
    assert client.get("/console/orgs/acme/chat").status_code == 403
    chat = client.post("/console/orgs/acme/chat", json={"model": "acme", "messages": []},
                       headers={"X-CSRF-Token": token, "Accept": "application/json"})
    assert chat.status_code == 403
    assert org_row(dep) == before


def test_operator_key_has_no_org_admin_route_on_the_api(console):
    """Why the console makes the operator read-only: ``/api`` refuses it on org routes."""
    client, dep, _ = console
    refused = client.post("/api/orgs/acme/pin", json={"checkpoint_id": dep.checkpoints["acme-1"]},
                          headers={"Authorization": f"Bearer {OPERATOR_KEY}"})
    assert refused.status_code == 401
    assert org_row(dep)["pinned"] is None


def test_operator_never_sees_a_group_lineage(operator, eng):
    client, _, _ = operator
    tree = client.get("/console/orgs/acme/checkpoints").text
    assert 'id="lineages"' not in tree and eng.e1 not in tree
    for tab in ("checkpoints", "history"):
        hidden = client.get(f"/console/orgs/acme/{tab}", params={"audience": "eng"})
        assert hidden.status_code == 404 and "no group 'eng'" in html.unescape(hidden.text)
    assert cells(client.get("/console/orgs").text, "acme")["pending"] == "2"  # eng's pending doc not counted
    assert eng.pending_doc not in client.get("/console/orgs/acme").text


def test_without_a_configured_operator_key_it_is_just_an_invalid_key(console_env, tiny_base):
    dep, _ = console_env
    app = create_app(dep.settings, serve_settings(operator_key=None), base=tiny_base)
    with TestClient(app, follow_redirects=False) as client:
        for key in (OPERATOR_KEY, ""):
            response = login(client, key)
            assert response.status_code == 401
        assert KEY_COOKIE not in client.cookies
