"""Checkpoints the server must refuse to serve, by name, without failing anything else:
quarantined, trained on another base, corrupt in the store; and an org with nothing trained yet."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from orgmem.checkpoints import MEMORY, CheckpointDraft, commit_checkpoint
from orgmem.db.session import session_scope
from orgmem.keys import create_key
from orgmem.lineage import create_org, quarantine
from orgmem.store import open_store
from tests.serving.support import PREFIX


def side_checkpoint(dep, data: bytes, tag: str, **overrides) -> str:
    """A candidate child of acme-1 (off the head's lineage)."""
    store = open_store(settings=dep.settings)
    record = {"base_model": "tiny-random", "base_fingerprint": dep.state.base.fingerprint, **overrides}
    with session_scope(dep.settings.database_url) as s:
        result = commit_checkpoint(s, store, CheckpointDraft(
            org="acme", parent_id=dep.checkpoints["acme-1"], objects={MEMORY: data}, manifest={}, inputs=[],
            metrics={}, status="candidate", created_by="test", memory_kind="cms", digest_extra={"tag": tag},
            **record))
        return result.checkpoint.id


def test_quarantined_checkpoint_is_refused_and_not_listed(deployment, memories):
    ck = side_checkpoint(deployment, memories["acme-2"], "quarantined")
    with session_scope(deployment.settings.database_url, write=True) as s:
        quarantine(s, "acme", ck, actor="test", reason="saw forgotten data")
    with pytest.raises(openai.ConflictError, match="quarantined"):
        deployment.client("acme-admin").completions.create(model=f"acme@{ck}", prompt="hi", max_tokens=1)
    assert f"acme@{ck}" not in [m.id for m in deployment.client("acme-admin").models.list()]


def test_checkpoint_of_another_base_is_refused_naming_it(deployment, memories):
    ck = side_checkpoint(deployment, memories["acme-2"], "foreign-base", base_model="other-base",
                         base_fingerprint="0" * 64)
    with pytest.raises(openai.ConflictError, match="other-base") as err:
        deployment.client("acme-admin").completions.create(model=f"acme@{ck}", prompt="hi", max_tokens=1)
    assert ck in err.value.message


def test_corrupt_memory_object_is_refused_and_the_server_keeps_serving(deployment, memories):
    ck = side_checkpoint(deployment, memories["acme-2"], "corrupt")
    root = Path(deployment.settings.store_url.removeprefix("file://"))
    path = root / f"orgs/acme/checkpoints/{ck}/{MEMORY}"
    path.write_bytes(b"\0" * len(memories["acme-2"]))
    with pytest.raises(openai.InternalServerError) as err:
        deployment.client("acme-admin").completions.create(model=f"acme@{ck}", prompt="hi", max_tokens=1)
    # generic over HTTP (the detail, with the store URL, is in the server log under the request id)
    assert err.value.code == "integrity_error" and "integrity check" in err.value.message
    assert err.value.response.headers["x-request-id"] in err.value.message
    assert deployment.settings.store_url not in err.value.response.text
    assert ck not in [k for k in deployment.state.cache.keys()]
    ok = deployment.client("acme-employee").completions.create(model="acme", prompt=PREFIX, max_tokens=5,
                                                               temperature=0)
    assert ok.choices[0].text.startswith(" 5555")


def test_org_without_checkpoints_is_served_by_the_bare_base(deployment):
    with session_scope(deployment.settings.database_url, write=True) as s:
        create_org(s, "newco", actor="test")
        key = create_key(s, "newco", "employee", actor="test").key
    raw = deployment.client(key).completions.with_raw_response.create(model="newco", prompt="hi",
                                                                      max_tokens=2)
    assert raw.headers["x-orgmem-checkpoint"] == "base"
    assert raw.parse().model_extra["orgmem"] == {"org": "newco", "checkpoint_id": None}


def test_client_disconnect_cancels_the_generation(deployment):
    body = {"model": "acme", "prompt": PREFIX, "max_tokens": 1500, "temperature": 0, "stream": True}
    headers = {"Authorization": f"Bearer {deployment.keys['acme-employee']}"}
    with httpx.stream("POST", f"{deployment.url}/v1/completions", json=body, headers=headers) as resp:
        assert resp.status_code == 200
        lines = resp.iter_lines()
        next(lines)
        engine = deployment.state.engine
        for _ in range(50):  # the row joins the batch right after its first token
            if engine.active == 1:
                break
            next(lines)
        assert engine.active == 1
    for _ in range(200):
        if engine.active == 0:
            break
        httpx.get(f"{deployment.url}/healthz")  # lets the server notice the closed connection
    assert engine.active == 0


def test_a_memory_failing_in_the_forward_fails_only_its_requests(deployment, monkeypatch):
    from orgmem.memory.rows import RowMemory

    def explode(x, out):
        raise RuntimeError("memory op exploded")

    broken = RowMemory(sha256="b" * 64, kind="cms", ops={"model.layers.3.mlp": [explode]})
    real = deployment.state.memory_for
    monkeypatch.setattr(deployment.state, "memory_for",
                        lambda resolved: broken if resolved.org == "acme" else real(resolved))
    globex = deployment.client("globex-employee")
    with globex.completions.with_streaming_response.create(model="globex", prompt=PREFIX, max_tokens=300,
                                                           temperature=0, stream=True) as good:
        acme = deployment.client("acme-employee")
        with pytest.raises(openai.APIError, match=r"internal error.*request id req_"):  # not the exception
            list(acme.completions.create(model="acme", prompt="hi", max_tokens=5, stream=True))
        with pytest.raises(openai.InternalServerError):
            acme.completions.create(model="acme", prompt="hi", max_tokens=5)
        chunks = list(good.parse())
    assert "".join(c.choices[0].text for c in chunks).startswith(" 9876")
    assert chunks[-1].choices[0].finish_reason == "length"
