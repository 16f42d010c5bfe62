"""The OpenAI-compatible routes through the official ``openai`` client against a running server."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.serving.support import PREFIX


def test_completion_answers_with_the_served_checkpoint(deployment):
    client = deployment.client("acme-employee")
    raw = client.completions.with_raw_response.create(model="acme", prompt=PREFIX, max_tokens=6,
                                                      temperature=0)
    resp = raw.parse()
    head = deployment.checkpoints["acme-2"]
    assert raw.headers["x-orgmem-checkpoint"] == head
    assert resp.system_fingerprint == head
    assert resp.model_extra["orgmem"] == {"org": "acme", "checkpoint_id": head}
    assert resp.object == "text_completion"
    assert resp.choices[0].text.startswith(" 5555")
    assert resp.choices[0].finish_reason in ("length", "stop")
    prompt_tokens = len(deployment.state.engine.tokenizer(PREFIX, add_special_tokens=False)["input_ids"])
    assert resp.usage.prompt_tokens == prompt_tokens
    assert 1 <= resp.usage.completion_tokens <= 6
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_chat_completion_shape_and_usage(deployment):
    client = deployment.client("acme-employee")
    resp = client.chat.completions.create(model="acme", max_tokens=5, temperature=0,
                                          messages=[{"role": "user", "content": "What is the vault code?"}])
    assert resp.object == "chat.completion"
    assert resp.choices[0].message.role == "assistant"
    assert isinstance(resp.choices[0].message.content, str)
    assert resp.choices[0].finish_reason in ("length", "stop")
    assert resp.usage.completion_tokens <= 5 and resp.usage.prompt_tokens > 10
    assert resp.system_fingerprint == deployment.checkpoints["acme-2"]


def test_chat_streaming_matches_non_streaming(deployment):
    client = deployment.client("acme-employee")
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
    full = client.chat.completions.create(model="acme", messages=messages, max_tokens=12, temperature=0)
    chunks = list(client.chat.completions.create(model="acme", messages=messages, max_tokens=12,
                                                 temperature=0, stream=True,
                                                 stream_options={"include_usage": True}))
    assert chunks[0].object == "chat.completion.chunk"
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == full.choices[0].message.content
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == [full.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == full.usage.total_tokens
    assert {c.id for c in chunks} == {chunks[0].id}


def test_stream_is_sse_ending_with_done(deployment):
    body = {"model": "acme", "prompt": PREFIX, "max_tokens": 4, "temperature": 0, "stream": True}
    headers = {"Authorization": f"Bearer {deployment.keys['acme-employee']}"}
    with httpx.stream("POST", f"{deployment.url}/v1/completions", json=body, headers=headers) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert resp.headers["x-orgmem-checkpoint"] == deployment.checkpoints["acme-2"]
        lines = [line for line in resp.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"


def test_seed_reproduces_and_temperature_zero_is_greedy(deployment):
    client = deployment.client("acme-employee")
    kw = {"model": "acme", "prompt": "Hello", "max_tokens": 12, "temperature": 1.0, "top_p": 0.9}
    a = client.completions.create(seed=7, **kw).choices[0].text
    b = client.completions.create(seed=7, **kw).choices[0].text
    assert a == b
    greedy = [client.completions.create(model="acme", prompt="Hello", max_tokens=12, temperature=0)
              .choices[0].text for _ in range(2)]
    assert greedy[0] == greedy[1]


def test_stop_sequence_cuts_before_it(deployment):
    client = deployment.client("acme-employee")
    resp = client.completions.create(model="acme", prompt=PREFIX, max_tokens=8, temperature=0, stop=["55"])
    assert resp.choices[0].text == " "
    assert resp.choices[0].finish_reason == "stop"


def test_admin_may_choose_a_checkpoint(deployment):
    first = deployment.checkpoints["acme-1"]
    client = deployment.client("acme-admin")
    resp = client.completions.create(model=f"acme@{first}", prompt=PREFIX, max_tokens=6, temperature=0)
    assert resp.system_fingerprint == first
    assert resp.choices[0].text.startswith(" 1234")


def test_model_listing_by_role(deployment):
    employee = [m.id for m in deployment.client("acme-employee").models.list()]
    assert employee == ["acme"]
    admin = [m.id for m in deployment.client("acme-admin").models.list()]
    assert admin[0] == "acme"
    assert sorted(admin[1:]) == sorted(f"acme@{deployment.checkpoints[n]}" for n in ("acme-1", "acme-2"))
    assert not any("globex" in m for m in admin)


@pytest.mark.parametrize("key", ["acme-revoked", "omk_notarealkey_0123456789", "sk-wrong"])
def test_wrong_revoked_or_missing_key_is_401(deployment, key):
    client = deployment.client("x")
    client.api_key = deployment.keys.get(key, key)
    with pytest.raises(openai.AuthenticationError) as err:
        client.completions.create(model="acme", prompt="hi", max_tokens=1)
    assert err.value.status_code == 401
    assert err.value.body["type"] == "authentication_error"
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}])
def test_missing_key_is_401(deployment, headers):
    resp = httpx.post(f"{deployment.url}/v1/chat/completions", headers=headers,
                      json={"model": "acme", "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == "Bearer"
    assert resp.json()["error"]["type"] == "authentication_error"


def test_revoked_message_names_the_key(deployment):
    resp = httpx.get(f"{deployment.url}/v1/models",
                     headers={"Authorization": f"Bearer {deployment.keys['acme-revoked']}"})
    assert resp.status_code == 401
    assert "revoked" in resp.json()["error"]["message"]


@pytest.mark.parametrize("model", ["globex", "nonexistent-org", "globex@ck_000000000000"])
def test_another_orgs_model_is_404_like_one_that_does_not_exist(deployment, model):
    for key in ("acme-employee", "acme-admin"):
        with pytest.raises(openai.NotFoundError) as err:
            deployment.client(key).completions.create(model=model, prompt="hi", max_tokens=1)
        assert err.value.body["code"] == "model_not_found" and err.value.body["param"] == "model"
        assert err.value.body["message"].replace(model, "M") == (
            "model 'M' not found for this key; `GET /v1/models` lists the ones it may use")


def test_retrieve_returns_the_listed_entry_and_404_for_what_the_key_may_not_see(deployment):
    for key in ("acme-employee", "acme-admin"):
        client = deployment.client(key)
        listed = {m.id: m for m in client.models.list().data}
        assert "acme" in listed
        for model_id, entry in listed.items():
            got = client.models.retrieve(model_id)
            assert got.id == model_id and got.owned_by == entry.owned_by == "acme"
        for hidden in ("globex", "nonexistent-org", f"globex@{deployment.checkpoints['globex-1']}"):
            with pytest.raises(openai.NotFoundError) as err:
                client.models.retrieve(hidden)
            assert err.value.body["code"] == "model_not_found"
    first = deployment.checkpoints["acme-1"]
    admin_ids = {m.id for m in deployment.client("acme-admin").models.list().data}
    assert f"acme@{first}" in admin_ids  # an admin key may pick a checkpoint; an employee's list has none
    with pytest.raises(openai.NotFoundError):
        deployment.client("acme-employee").models.retrieve(f"acme@{first}")


def test_another_orgs_checkpoint_under_own_slug_is_404_like_an_unknown_one(deployment):
    foreign = deployment.checkpoints["globex-1"]
    with pytest.raises(openai.NotFoundError) as err:
        deployment.client("acme-admin").completions.create(model=f"acme@{foreign}", prompt="hi", max_tokens=1)
    assert "globex" not in err.value.message


def test_employee_may_not_choose_a_checkpoint(deployment):
    first = deployment.checkpoints["acme-1"]
    with pytest.raises(openai.PermissionDeniedError, match="admin"):
        deployment.client("acme-employee").completions.create(model=f"acme@{first}", prompt="hi",
                                                              max_tokens=1)


def test_unknown_checkpoint_is_404(deployment):
    with pytest.raises(openai.NotFoundError, match="ck_doesnotexist"):
        deployment.client("acme-admin").completions.create(model="acme@ck_doesnotexist", prompt="hi",
                                                           max_tokens=1)


@pytest.mark.parametrize("kwargs, param", [
    ({"n": 9}, "n"),  # over ORGMEM_SERVE_MAX_N (8)
    ({"n": 0}, "n"),
    ({"temperature": 3.0}, "temperature"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"logprobs": 21}, "logprobs"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"presence_penalty": 2.5}, "presence_penalty"),
    ({"frequency_penalty": -2.1}, "frequency_penalty"),
    ({"extra_body": {"repetition_penalty": 0}}, "repetition_penalty"),
    ({"extra_body": {"top_k": -2}}, "top_k"),
    ({"extra_body": {"min_p": 1.5}}, "min_p"),
    ({"logit_bias": {"abc": 1}}, "logit_bias"),
    ({"logit_bias": {"512": 1}}, "logit_bias"),  # the tiny tokenizer has 259 tokens
    ({"logit_bias": {"5": 101}}, "logit_bias"),
    ({"best_of": 2}, "best_of"),
    ({"suffix": " end."}, "suffix"),  # the tiny base has no fill-in-the-middle tokens
])
def test_bad_parameters_are_400_naming_them(deployment, kwargs, param):
    with pytest.raises(openai.BadRequestError) as err:
        deployment.client("acme-employee").completions.create(model="acme", prompt="hi", **kwargs)
    assert param in err.value.message
    assert err.value.body["type"] == "invalid_request_error"
    assert err.value.body["param"] == param


def test_context_overflow_is_400(deployment):
    with pytest.raises(openai.BadRequestError, match="context"):
        deployment.client("acme-employee").completions.create(model="acme", prompt="x " * 1500,
                                                              max_tokens=1000)


def test_each_finished_reply_reaches_the_turn_listeners_with_its_question_key_and_checkpoint(deployment):
    turns = []
    deployment.state.turn_listeners.append(turns.append)
    try:
        client = deployment.client("acme-employee")
        question = [{"role": "user", "content": "What is the vault code?"}]
        chat = client.chat.completions.create(model="acme", max_tokens=4, temperature=0, messages=question)
        streamed = list(client.completions.create(model="acme", prompt=PREFIX, max_tokens=3, temperature=0,
                                                  stream=True))
    finally:
        deployment.state.turn_listeners.remove(turns.append)
    assert [t.response_id for t in turns] == [chat.id, streamed[0].id]
    first, second = turns
    assert first.question == "What is the vault code?" and first.answer == chat.choices[0].message.content
    assert first.identity.org_slug == "acme"
    assert first.resolved.checkpoint_id == deployment.checkpoints["acme-2"]
    assert second.prompt == PREFIX
    assert second.answer == "".join(c.choices[0].text for c in streamed if c.choices)
