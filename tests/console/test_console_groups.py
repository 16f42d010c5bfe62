"""Group (audience) lineages in the console: a key carrying the group picks the group's lineage,
pins, unpins and rolls it back and reads its history, without touching the org's; a key without
the group is told the group does not exist, word for word as ``/api`` tells it."""

from __future__ import annotations

import html

import pytest

from orgmem.console.security import CSRF_COOKIE
from orgmem.db.models import AudienceHead
from orgmem.db.session import session_scope
from tests.console.conftest import act, flash_of, login, org_row


def group_row(dep, audience: str = "eng") -> dict:
    with session_scope(dep.settings.database_url) as s:
        head = s.query(AudienceHead).filter_by(audience=audience).one()
        return {"head": head.head_checkpoint_id, "pinned": head.pinned_checkpoint_id,
                "served": head.served_checkpoint_id}


@pytest.fixture
def eng_admin(console, eng):
    client, dep, _ = console
    assert login(client, eng.key).status_code == 303
    return client, dep, eng


@pytest.fixture
def plain_admin(console, eng):
    client, dep, _ = console
    assert login(client, dep.keys["acme-admin"]).status_code == 303
    return client, dep, eng


def api_error(client, dep, path: str, key: str, **params) -> tuple[int, str]:
    response = client.get(path, params=params, headers={"Authorization": f"Bearer {dep.keys.get(key, key)}"})
    return response.status_code, response.json()["error"]["message"]


def test_key_without_the_group_gets_what_the_api_gives_it(plain_admin):
    client, dep, eng = plain_admin
    tree = client.get("/console/orgs/acme/checkpoints").text
    assert 'id="lineages"' not in tree and eng.e1 not in tree and eng.e2 not in tree
    for tab in ("checkpoints", "history"):
        status, message = api_error(client, dep, f"/api/orgs/acme/{tab}", "acme-admin", audience="eng")
        page = client.get(f"/console/orgs/acme/{tab}", params={"audience": "eng"})
        assert (page.status_code, status) == (404, 404)
        assert message in html.unescape(page.text), message
    status, message = api_error(client, dep, f"/api/orgs/acme/checkpoints/{eng.e1}", "acme-admin")
    confirm = client.get("/console/orgs/acme/confirm/pin", params={"checkpoint": eng.e1})
    assert (confirm.status_code, status) == (404, 404) and message in html.unescape(confirm.text)
    assert client.get("/console/orgs/acme/confirm/unpin", params={"audience": "eng"}).status_code == 404


def test_key_without_the_group_cannot_move_its_lineage(plain_admin):
    client, dep, eng = plain_admin
    before = group_row(dep)
    token = client.cookies[CSRF_COOKIE]
    pinned = client.post("/console/orgs/acme/actions/pin", data={"csrf_token": token, "checkpoint": eng.e1})
    page = flash_of(client, pinned)
    assert 'class="flash error"' in page and f"checkpoint {eng.e1!r} not found" in page
    for action, form in (("unpin", {}), ("rollback", {"checkpoint": eng.e1, "reason": "x"})):
        refused = client.post(f"/console/orgs/acme/actions/{action}",
                              data={"csrf_token": token, "audience": "eng", **form})
        assert refused.status_code == 404, action
    assert group_row(dep) == before
    chat = client.get("/console/orgs/acme/chat").text
    assert "acme#eng" not in chat and eng.e2 not in chat


def test_group_key_picks_the_groups_lineage(eng_admin):
    client, dep, eng = eng_admin
    org_tree = client.get("/console/orgs/acme/checkpoints").text
    assert 'href="/console/orgs/acme/checkpoints?audience=eng"' in org_tree
    assert eng.e1 not in org_tree and f'id="ck-{dep.checkpoints["acme-2"]}"' in org_tree
    tree = client.get("/console/orgs/acme/checkpoints?audience=eng").text
    assert f'id="ck-{eng.e1}"' in tree and f'id="ck-{eng.e2}"' in tree
    assert dep.checkpoints["acme-1"] not in tree.split('id="tree"')[1]  # only the group's nodes
    assert f'<code id="group-served">{eng.e2}</code>' in tree
    served_node = tree.split(f'id="ck-{eng.e2}"')[0].rsplit("<div", 1)[1]
    assert "served" in served_node
    assert f"/confirm/rollback?checkpoint={eng.e1}&amp;audience=eng" in tree
    assert f"/confirm/rollback?checkpoint={eng.e2}" not in tree  # the head itself
    assert 'data-metric="new_cloze_recall"' in tree and tree.count("<polyline") >= 1
    chat = client.get("/console/orgs/acme/chat").text
    assert 'value="acme#eng"' in chat and f'value="acme@{eng.e2}"' in chat
    orgs = client.get("/console/orgs").text
    assert 'data-col="pending">3<' in orgs  # pending.md, secret.md and the group's pending document


def test_pin_unpin_and_rollback_move_only_the_groups_lineage(eng_admin):
    client, dep, eng = eng_admin
    org_before = org_row(dep)
    pinned = act(client, "pin", checkpoint=eng.e1, reason="eng pin")
    assert pinned.headers["location"] == "/console/orgs/acme/checkpoints?audience=eng"
    page = flash_of(client, pinned)
    assert f"pinned {eng.e1}" in page and 'class="flash ok"' in page
    assert group_row(dep) == {"head": eng.e2, "pinned": eng.e1, "served": eng.e1}
    assert 'id="action-unpin" href="/console/orgs/acme/confirm/unpin?audience=eng"' in page
    confirm = client.get("/console/orgs/acme/confirm/unpin", params={"audience": "eng"}).text
    assert "group &#39;eng&#39;" in confirm and eng.e1[:14] in confirm
    page = flash_of(client, act(client, "unpin", audience="eng"))
    assert "unpinned (group 'eng')" in page and group_row(dep)["pinned"] is None
    refused = flash_of(client, act(client, "rollback", checkpoint=eng.e1, reason=""))
    assert "needs a reason" in refused and group_row(dep)["head"] == eng.e2
    page = flash_of(client, act(client, "rollback", checkpoint=eng.e1, reason="eng bad night"))
    assert f"rolled back to {eng.e1}" in page
    assert group_row(dep) == {"head": eng.e1, "pinned": None, "served": eng.e1}
    assert org_row(dep) == org_before

    history = html.unescape(client.get("/console/orgs/acme/history?audience=eng").text)
    rows = history.split('id="history"')[1]
    assert "eng pin" in rows and "eng bad night" in rows and "unpin" in rows
    assert rows.index("eng bad night") < rows.index("eng pin")  # newest first
    org_history = html.unescape(client.get("/console/orgs/acme/history").text)
    assert "eng pin" not in org_history and "eng bad night" not in org_history


def test_org_unpin_from_a_group_key_leaves_the_group_pinned(eng_admin):
    client, dep, eng = eng_admin
    flash_of(client, act(client, "pin", checkpoint=eng.e1))
    flash_of(client, act(client, "pin", checkpoint=dep.checkpoints["acme-1"]))
    page = flash_of(client, act(client, "unpin"))
    assert "unpinned;" in page and org_row(dep)["pinned"] is None
    assert group_row(dep)["pinned"] == eng.e1
