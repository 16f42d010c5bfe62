"""The audit and receipts pages: ``orgmem audit`` (time, actor, action, target, details; filtered by
action family and since) and the forget receipts with their deletion status, linked from the
forget's result."""

from __future__ import annotations

import html
import re

import pytest

from orgmem.console.render import _decode_flash, _encode_flash
from orgmem.db.models import ForgetReceipt
from orgmem.db.session import session_scope
from tests.console.conftest import act, flash_of, login


@pytest.fixture
def admin(console):
    client, dep, data = console
    assert login(client, dep.keys["acme-admin"]).status_code == 303
    return client, dep, data


def audit_actions(page: str) -> list[str]:
    return re.findall(r'<tr data-action="([^"]+)">', page)


def test_audit_lists_admin_actions_newest_first_with_actor_and_details(admin):
    client, dep, _ = admin
    ck1 = dep.checkpoints["acme-1"]
    act(client, "pin", checkpoint=ck1, reason="known good")
    page = html.unescape(client.get("/console/orgs/acme/audit").text)
    actions = audit_actions(page)
    assert actions[0] == "serving.pin" and actions[-1] == "org.create"  # newest first
    assert {"key.create", "checkpoint.commit"} <= set(actions)
    pin_row = page.split('<tr data-action="serving.pin">')[1].split("</tr>")[0]
    assert "key:acme/" in pin_row and f"<code>{ck1}</code>" in pin_row
    assert f"<b>served</b>: {ck1}" in pin_row
    assert 'value="serving"' in page and 'value="key"' in page  # the family filter's choices


def test_audit_filters_by_family_and_since(admin):
    client, dep, _ = admin
    act(client, "pin", checkpoint=dep.checkpoints["acme-1"])
    serving = client.get("/console/orgs/acme/audit", params={"action": "serving"}).text
    assert set(audit_actions(serving)) == {"serving.pin", "serving.promote"}  # promote: the fixture's
    assert '<option value="serving" selected>' in serving
    exact = client.get("/console/orgs/acme/audit", params={"action": "key.create"}).text
    assert set(audit_actions(exact)) == {"key.create"}
    recent = client.get("/console/orgs/acme/audit", params={"since": "1h"}).text
    assert "org.create" in audit_actions(recent)
    future = client.get("/console/orgs/acme/audit", params={"since": "2999-01-01T00:00"}).text
    assert audit_actions(future) == [] and 'id="audit-empty"' in future
    bad = client.get("/console/orgs/acme/audit", params={"since": "yesterday"})
    assert bad.status_code == 400 and "since 'yesterday'" in html.unescape(bad.text)


def test_audit_of_another_org_is_refused(admin):
    client, _, _ = admin
    assert client.get("/console/orgs/globex/audit").status_code == 403
    assert client.get("/console/orgs/globex/receipts").status_code == 403


def test_forget_flash_links_to_its_receipt_with_deletion_status(admin):
    client, dep, data = admin
    assert 'id="receipts-empty"' in client.get("/console/orgs/acme/receipts").text
    page = flash_of(client, act(client, "forget", document="secret.md", reason="leaked"))
    with session_scope(dep.settings.database_url) as s:
        receipt = s.query(ForgetReceipt).one()
        receipt_id, status, objects = receipt.id, receipt.deletion_status, len(receipt.objects_deleted or [])
    link = f"/console/orgs/acme/receipts/{receipt_id}"
    assert f'<a href="{link}" id="flash-link">' in page
    shown = html.unescape(client.get(link).text)
    assert f'data-receipt="{receipt_id}"' in shown and "secret.md" in shown and "leaked" in shown
    assert data.candidate in shown.split("Quarantined")[1]
    assert status == "done" and objects > 0  # no grace configured: deleted at once
    assert 'data-deletion="done"' in shown and f"{objects} object(s)" in shown
    listing = html.unescape(client.get("/console/orgs/acme/receipts").text)
    row = listing.split(f'<tr data-receipt="{receipt_id}">')[1].split("</tr>")[0]
    assert f'href="{link}"' in row and "secret.md" in row and 'data-deletion="done"' in row
    assert data.candidate in row


def test_unknown_receipt_is_404_naming_it(admin):
    client, _, _ = admin
    missing = client.get("/console/orgs/acme/receipts/fr_nope")
    assert missing.status_code == 404 and "fr_nope" in html.unescape(missing.text)


def test_operator_reads_audit_and_receipts(console):
    from tests.console.conftest import OPERATOR_KEY

    client, _, _ = console
    login(client, OPERATOR_KEY)
    assert "org.create" in audit_actions(client.get("/console/orgs/globex/audit").text)
    assert client.get("/console/orgs/globex/receipts").status_code == 200


def test_flash_links_only_ever_point_into_the_console():
    for link in ("https://evil.example/x", "//evil.example/x", "/api/orgs", "/console/\\\\evil", 7):
        assert _decode_flash(_encode_flash("ok", "t", link))["link"] is None, link
    kept = _decode_flash(_encode_flash("ok", "t", "/console/orgs/acme/receipts/fr_1"))
    assert kept == {"kind": "ok", "text": "t", "link": "/console/orgs/acme/receipts/fr_1"}
