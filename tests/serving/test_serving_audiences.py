"""Group audiences when serving: a group's memory is stacked on the org memory for keys carrying
the group, and is unreachable through every endpoint for keys without it.

acme serves ``acme-2`` (completes "The vault code is" with 5555) to everyone; its group ``legal``
serves a memory planted on top of it that makes the stack answer 4242. A key without ``legal``
must get exactly the org-only model: same logits, same text, same checkpoint header.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import torch

from orgmem.app import create_app
from orgmem.checkpoints import MEMORY, CheckpointDraft, commit_checkpoint
from orgmem.db.session import session_scope
from orgmem.keys import authenticate, create_key
from orgmem.serving.config import ServeSettings
from orgmem.serving.engine import GenerationEngine
from orgmem.serving.routing import MemoryRouter
from orgmem.store import open_store
from tests.serving.support import FACTS, PREFIX, make_deployment, teach
from tests.serving.test_serving_engine import _collect

GROUP_ANSWER = "4242"
_HTTP = httpx.Client(timeout=60)


def teach_on_top(base, under: bytes, answer: str) -> bytes:
    """A CMS memory trained with ``under`` applied (frozen), so the stack completes PREFIX with ``answer``."""
    return teach(base, answer, under=under)


@pytest.fixture(scope="module")
def dep(tmp_path_factory, tiny_base, memories, run_server):
    d = make_deployment(tmp_path_factory.mktemp("audiences"), tiny_base, memories)
    group_memory = teach_on_top(tiny_base, memories["acme-2"], GROUP_ANSWER)
    with session_scope(d.settings.database_url) as s:
        store = open_store(settings=d.settings)
        ck = commit_checkpoint(s, store, CheckpointDraft(
            org="acme", parent_id=None, objects={MEMORY: group_memory}, manifest={}, inputs=[], metrics={},
            status="promoted", created_by="test", base_model=tiny_base.name,
            base_fingerprint=tiny_base.fingerprint, memory_kind="cms", audience="legal"))
        d.checkpoints["legal-1"] = ck.checkpoint.id
    with session_scope(d.settings.database_url, write=True) as s:
        d.keys["legal-employee"] = create_key(s, "acme", "employee", "counsel", groups=["legal"]).key
        d.keys["legal-admin"] = create_key(s, "acme", "admin", "gc", groups=["legal", "eng"]).key
    serve = ServeSettings(cache_size=4, max_batch=16, rate_limit_per_minute=100_000, rate_limit_burst=10_000,
                          max_concurrent_per_key=64, default_max_tokens=16)
    d.app = create_app(d.settings, serve, base=tiny_base)
    d.url = run_server(d.app)
    return d


def call(d, method: str, path: str, key: str, **kw) -> httpx.Response:
    return _HTTP.request(method, f"{d.url}{path}", headers={"Authorization": f"Bearer {d.keys[key]}"}, **kw)


def complete(d, key: str, model: str = "acme", **kw) -> tuple[str, str]:
    raw = d.client(key).completions.with_raw_response.create(model=model, prompt=PREFIX, max_tokens=8,
                                                            temperature=0, **kw)
    return raw.headers["x-orgmem-checkpoint"], raw.parse().choices[0].text


def _identity(d, key: str):
    with session_scope(d.settings.database_url) as s:
        return authenticate(s, d.keys[key])


def test_group_memory_changes_logits_only_for_group_keys(dep, tiny_base):
    state = dep.state
    plain = state.memory_for(state.resolve(_identity(dep, "acme-employee"), "acme"))
    grouped = state.memory_for(state.resolve(_identity(dep, "legal-employee"), "acme"))
    pinned = f"acme@{dep.checkpoints['acme-2']}"
    org_only = state.memory_for(state.resolve(_identity(dep, "acme-admin"), pinned))
    assert plain is org_only, "a key without the group gets the org memory object itself"
    assert grouped is not plain and len(grouped.modules) == len(plain.modules) * 2
    tokenize = tiny_base.tokenizer
    prompt = len(tokenize(PREFIX, add_special_tokens=False)["input_ids"])
    ids = torch.tensor([tokenize(f"{PREFIX} {GROUP_ANSWER}.", add_special_tokens=False)["input_ids"]])
    ids = ids.repeat(2, 1)  # teacher-forced: the logits at the answer positions show what each row recalls
    router = MemoryRouter(tiny_base.model)
    router.ensure_hooks(grouped.paths)
    try:
        with torch.inference_mode():
            with router.route([org_only, org_only]):
                alone = tiny_base.model(input_ids=ids).logits
            with router.route([plain, grouped]):  # one batch, two different stacks
                mixed = tiny_base.model(input_ids=ids).logits
    finally:
        router.remove_hooks()
    torch.testing.assert_close(mixed[0], alone[0], atol=0, rtol=0)
    assert (mixed[1] - alone[1]).abs().max() > 1e-2, "the group memory must change the group key's logits"
    answer = ids[0, prompt:]
    assert torch.equal(mixed[1, prompt - 1:-1].argmax(-1), answer), "the group row recalls the group's fact"
    assert not torch.equal(alone[0, prompt - 1:-1].argmax(-1), answer), "the org-only model does not"


def test_group_key_is_served_the_stack_and_others_the_org_model(dep):
    org_ck, legal_ck = dep.checkpoints["acme-2"], dep.checkpoints["legal-1"]
    header, text = complete(dep, "acme-employee")
    assert header == org_ck and text.startswith(f" {FACTS['acme-2']}")
    assert complete(dep, "acme-admin", f"acme@{org_ck}")[1] == text, "exactly the org-only model"
    header, group_text = complete(dep, "legal-employee")
    assert header == f"{org_ck}+legal:{legal_ck}" and group_text.startswith(f" {GROUP_ANSWER}")
    assert complete(dep, "legal-employee", "acme#legal") == (header, group_text)
    stream = dep.client("acme-employee").chat.completions.with_raw_response.create(
        model="acme", messages=[{"role": "user", "content": PREFIX}], max_tokens=4, stream=True)
    assert stream.headers["x-orgmem-checkpoint"] == org_ck
    assert "legal" not in "".join(line for line in stream.http_response.iter_lines())


def test_concurrent_requests_with_and_without_the_group_share_batches(dep):
    expected = {key: complete(dep, key) for key in ("acme-employee", "legal-employee")}
    start = threading.Barrier(8)

    def ask(i: int) -> tuple[str, tuple[str, str]]:
        key = ("acme-employee", "legal-employee")[i % 2]
        client = dep.client(key)
        start.wait()
        raw = client.completions.with_raw_response.create(model="acme", prompt=PREFIX, max_tokens=8,
                                                          temperature=0)
        return key, (raw.headers["x-orgmem-checkpoint"], raw.parse().choices[0].text)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(ask, range(8)))
    for key, got in results:
        assert got == expected[key], key


def test_one_batch_with_and_without_the_group_decodes_each_row_as_if_alone(dep, tiny_base):
    state = dep.state
    plain = state.memory_for(state.resolve(_identity(dep, "acme-employee"), "acme"))
    grouped = state.memory_for(state.resolve(_identity(dep, "legal-employee"), "acme"))
    prompt = tiny_base.tokenizer(PREFIX, add_special_tokens=False)["input_ids"]
    engine = GenerationEngine(tiny_base, max_batch=8)
    # submitted before start: the first engine step prefills all four rows in one forward
    jobs = [_collect(engine, prompt, (plain, grouped)[i % 2], max_tokens=6) for i in range(4)]
    engine.start()
    try:
        for _, done, _ in jobs:
            assert done.wait(30)
        assert engine.stats.max_batch_seen == 4, "rows with different memory stacks share the batch"
        solo = []
        for memory in (plain, grouped):
            _, done, box = _collect(engine, prompt, memory, max_tokens=6)
            assert done.wait(30)
            solo.append(box["end"].text)
    finally:
        engine.stop()
    assert solo[0].startswith(f" {FACTS['acme-2']}") and solo[1].startswith(f" {GROUP_ANSWER}")
    for i, (_, _, box) in enumerate(jobs):
        assert box["end"].text == solo[i % 2]


def test_no_endpoint_reaches_a_group_memory_without_the_group(dep):
    legal_ck = dep.checkpoints["legal-1"]
    for key in ("acme-employee", "acme-admin"):
        with pytest.raises(Exception) as err:
            complete(dep, key, "acme#legal")
        assert getattr(err.value, "status_code", None) == 404, err.value
        models = call(dep, "GET", "/v1/models", key).json()["data"]
        assert "legal" not in str(models) and legal_ck not in str(models)
    with pytest.raises(Exception) as err:
        complete(dep, "acme-admin", f"acme@{legal_ck}")
    assert err.value.status_code == 404
    missing = call(dep, "GET", "/api/orgs/acme/checkpoints/ck_000000000000", "acme-admin").json()
    hidden = call(dep, "GET", f"/api/orgs/acme/checkpoints/{legal_ck}", "acme-admin")
    assert hidden.status_code == 404
    same = missing["error"]["message"].replace("ck_000000000000", legal_ck)
    assert hidden.json()["error"]["message"] == same, "like a checkpoint that does not exist"
    for method, path, body in (
        ("GET", "/api/orgs/acme/checkpoints?audience=legal", None),
        ("GET", "/api/orgs/acme/history?audience=legal", None),
        ("POST", "/api/orgs/acme/pin", {"checkpoint_id": legal_ck}),
        ("POST", "/api/orgs/acme/rollback", {"checkpoint_id": legal_ck}),
        ("POST", f"/api/orgs/acme/checkpoints/{legal_ck}/promote", {}),
        ("POST", "/api/orgs/acme/unpin?audience=legal", {}),
    ):
        resp = call(dep, method, path, "acme-admin", json=body)
        assert resp.status_code == 404, (method, path, resp.text)
    tree = call(dep, "GET", "/api/orgs/acme/checkpoints", "acme-admin").json()
    assert legal_ck not in str(tree), "the org tree lists org checkpoints only"
    resp = call(dep, "POST", "/api/orgs/acme/consolidate", "acme-admin", json={"audience": "legal"})
    assert resp.status_code == 403, "only a key carrying the group may train its memory"
    resp = call(dep, "POST", "/api/orgs/acme/consolidate", "legal-admin", json={"audience": "Legal Team"})
    assert resp.status_code == 400 and "invalid audience 'Legal Team'" in resp.json()["error"]["message"]


def test_group_keys_see_their_group_and_hand_on_only_their_groups(dep):
    legal_ck = dep.checkpoints["legal-1"]
    ids = [m["id"] for m in call(dep, "GET", "/v1/models", "legal-employee").json()["data"]]
    assert ids == ["acme", "acme#legal"], "employees see the stacked model and the group, no checkpoints"
    admin_ids = [m["id"] for m in call(dep, "GET", "/v1/models", "legal-admin").json()["data"]]
    assert f"acme@{legal_ck}" in admin_ids and "acme#eng" not in admin_ids, "eng serves nothing yet"
    tree = call(dep, "GET", "/api/orgs/acme/checkpoints?audience=legal", "legal-admin").json()
    assert [(n["id"], n["audience"], n["served"]) for n in tree] == [(legal_ck, "legal", True)]
    assert call(dep, "GET", f"/api/orgs/acme/checkpoints/{legal_ck}", "legal-admin").json()["served"] is True
    body = {"role": "employee", "groups": ["legal"]}
    refused = call(dep, "POST", "/api/orgs/acme/keys", "acme-admin", json=body)
    assert refused.status_code == 403 and "legal" in refused.json()["error"]["message"]
    made = call(dep, "POST", "/api/orgs/acme/keys", "legal-admin", json=body)
    assert made.status_code == 201 and made.json()["groups"] == ["legal"]
    listed = {k["name"]: k["groups"] for k in call(dep, "GET", "/api/orgs/acme/keys", "acme-admin").json()}
    assert listed["counsel"] == ["legal"] and listed["admin-1"] == []
