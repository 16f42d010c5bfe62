"""Forgetting over the admin API: POST /forget returns the stored receipt, the receipts and the
audit trail are readable by the org's admins only, and the forgotten checkpoint is never served."""

from __future__ import annotations

import httpx

from orgmem.checkpoints import MEMORY, CheckpointDraft, commit_checkpoint
from orgmem.db.session import session_scope
from orgmem.lineage import get_org
from orgmem.store import open_store
from tests.lineage_factories import add_chunks


def _call(dep, method: str, path: str, key: str = "acme-admin", **kw) -> httpx.Response:
    return httpx.request(method, f"{dep.url}{path}", headers={"Authorization": f"Bearer {dep.keys[key]}"},
                         timeout=30, **kw)


def _checkpoint_trained_on_a_plan(dep, memories) -> str:
    """A promoted child of acme's head trained on document ``plan.md`` (a real memory object)."""
    store = open_store(settings=dep.settings)
    with session_scope(dep.settings.database_url) as s:
        (chunk,) = add_chunks(s, get_org(s, "acme"), ["plan"])
        result = commit_checkpoint(s, store, CheckpointDraft(
            org="acme", parent_id=dep.checkpoints["acme-2"], objects={MEMORY: memories["acme-2"]},
            manifest={},
            inputs=[chunk.id], metrics={}, status="promoted", created_by="test", base_model="tiny-random",
            base_fingerprint=dep.state.base.fingerprint, memory_kind="cms"))  # fmt: skip
        return result.checkpoint.id


def test_forget_over_the_api_with_receipts_and_audit(deployment, memories):
    ck = _checkpoint_trained_on_a_plan(deployment, memories)
    resp = _call(deployment, "POST", "/api/orgs/acme/forget",
                 json={"document": "plan.md", "reason": "GDPR request 4", "replay": False})
    assert resp.status_code == 200, resp.text
    receipt = resp.json()
    assert receipt["id"].startswith("fr_") and receipt["document"] == "plan.md"
    assert receipt["saw"] == receipt["quarantined"] == [ck]
    assert receipt["head_before"] == ck and receipt["head_after"] == deployment.checkpoints["acme-2"]
    assert receipt["actor"].startswith("key:acme/admin") and receipt["reason"] == "GDPR request 4"
    assert receipt["deletion"]["status"] == "done" and receipt["deletion"]["bytes"] > 0
    assert receipt["replay_job"] is None

    listed = _call(deployment, "GET", "/api/orgs/acme/receipts").json()
    assert [r["id"] for r in listed] == [receipt["id"]]
    assert _call(deployment, "GET", f"/api/orgs/acme/receipts/{receipt['id']}").json() == listed[0]
    other = _call(deployment, "GET", f"/api/orgs/globex/receipts/{receipt['id']}", "globex-admin")
    assert other.status_code == 404 and "acme" not in other.text
    assert _call(deployment, "GET", "/api/orgs/acme/receipts", "globex-admin").status_code == 403
    assert _call(deployment, "GET", "/api/orgs/acme/receipts", "acme-employee").status_code == 403

    params = {"since": "1h", "action": "document"}
    audit = _call(deployment, "GET", "/api/orgs/acme/audit", params=params).json()
    assert [(e["action"], e["target"], e["data"]["receipt"]) for e in audit] == [
        ("document.forget", "plan.md", receipt["id"])]
    serving = _call(deployment, "GET", "/api/orgs/acme/audit", params={"action": "serving"}).json()
    assert {"serving.rollback", "serving.quarantine"} <= {e["action"] for e in serving}
    bad = _call(deployment, "GET", "/api/orgs/acme/audit", params={"since": "last tuesday"})
    assert bad.status_code == 400 and "last tuesday" in bad.text

    refused = _call(deployment, "POST", "/v1/completions", json={"model": f"acme@{ck}", "prompt": "hi",
                                                                  "max_tokens": 1})
    assert refused.status_code == 409 and "quarantined" in refused.text
    missing = _call(deployment, "POST", "/api/orgs/acme/forget", json={"document": "nope.md"})
    assert missing.status_code == 404 and "nope.md" in missing.text
