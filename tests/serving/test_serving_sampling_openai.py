"""Sampling and decoding parameters through the official ``openai`` client against the running
server: n, logprobs, penalties, logit_bias, top_k, min_p, echo, list prompts, suffix; and a
mixed-org batch where each row keeps its own parameters."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from tests.serving.engine_gate import held_admission
from tests.serving.support import FACTS, PREFIX

QUESTION = [{"role": "user", "content": "What is the vault code?"}]


def _tok(deployment):
    return deployment.state.engine.tokenizer


def _ids(deployment, text: str) -> list[int]:
    return _tok(deployment)(text, add_special_tokens=False)["input_ids"]


def _repeats(tokens: list[str]) -> bool:
    """Whether a token comes twice (ids past the tiny tokenizer's 259 all read '': not compared)."""
    named = [t for t in tokens if t]
    return len(set(named)) < len(named)


def test_chat_n_choices_with_a_seed_are_distinct_reproducible_and_counted_once(deployment):
    client = deployment.client("acme-employee")
    kw = dict(model="acme", messages=QUESTION, n=3, temperature=1.0, seed=42, max_tokens=8)
    first, again = client.chat.completions.create(**kw), client.chat.completions.create(**kw)
    assert [c.index for c in first.choices] == [0, 1, 2]
    texts = [c.message.content for c in first.choices]
    assert texts == [c.message.content for c in again.choices]
    assert len(set(texts)) == 3
    single = client.chat.completions.create(**{**kw, "n": 1})
    assert single.choices[0].message.content == texts[0], "choice 0 uses the seed itself"
    assert first.usage.prompt_tokens == single.usage.prompt_tokens  # the prompt counts once
    tokens = [len(_ids(deployment, t)) for t in texts]
    assert first.usage.completion_tokens >= sum(tokens) - 3 and first.usage.completion_tokens <= 24


def test_completions_n_streams_each_choice_under_its_index(deployment):
    client = deployment.client("acme-employee")
    kw = dict(model="acme", prompt=PREFIX, n=2, temperature=1.0, seed=3, max_tokens=6)
    full = client.completions.create(**kw)
    chunks = list(client.completions.create(stream=True, stream_options={"include_usage": True}, **kw))
    streamed = {0: "", 1: ""}
    finals = {}
    for c in chunks:
        for choice in c.choices:
            streamed[choice.index] += choice.text
            if choice.finish_reason:
                finals[choice.index] = choice.finish_reason
    assert [streamed[i] for i in (0, 1)] == [c.text for c in full.choices]
    assert finals == {c.index: c.finish_reason for c in full.choices}
    assert chunks[-1].usage.total_tokens == full.usage.total_tokens


def test_chat_stream_with_n_opens_every_choice_with_the_role(deployment):
    chunks = list(deployment.client("acme-employee").chat.completions.create(
        model="acme", messages=QUESTION, n=2, max_tokens=4, temperature=0, stream=True))
    choices = [c.choices[0] for c in chunks if c.choices]
    roles = [(c.index, c.delta.role) for c in choices if c.delta.role]
    assert roles == [(0, "assistant"), (1, "assistant")]
    texts = {i: "".join(c.delta.content or "" for c in choices if c.index == i) for i in (0, 1)}
    assert texts[0] == texts[1], "greedy choices are the same reply"


def test_n_takes_the_keys_slots_and_one_turn_per_choice_is_handed_over(deployment, monkeypatch):
    state = deployment.state
    monkeypatch.setattr(state.concurrency, "per_key", 2)
    monkeypatch.setattr(state.serve, "max_concurrent_per_key", 2)
    held: list[int] = []
    on_step = state.engine.on_step

    def record(rows: int, seconds: float) -> None:
        held.append(max(state.concurrency._counts.values(), default=0))
        if on_step is not None:
            on_step(rows, seconds)

    monkeypatch.setattr(state.engine, "on_step", record)
    turns = []
    state.turn_listeners.append(turns.append)
    try:
        resp = deployment.client("acme-employee").chat.completions.create(
            model="acme", messages=QUESTION, n=3, max_tokens=4, extra_body={"min_tokens": 4}, temperature=0.7,
            seed=1)
    finally:
        state.turn_listeners.remove(turns.append)
    assert len(resp.choices) == 3, "n above the per-key limit takes all of the key's slots and runs"
    assert held and max(held) == 2
    assert sorted(t.choice_index for t in turns) == [0, 1, 2]
    assert {t.response_id for t in turns} == {resp.id}
    assert sorted(t.answer for t in turns) == sorted(c.message.content for c in resp.choices)


def test_chat_logprobs_shape_and_values(deployment):
    client = deployment.client("acme-employee")
    resp = client.chat.completions.create(model="acme", messages=QUESTION, max_tokens=5,
                                          extra_body={"min_tokens": 5},
                                          temperature=0, logprobs=True, top_logprobs=3)
    content = resp.choices[0].logprobs.content
    assert len(content) == resp.usage.completion_tokens == 5
    assert "".join(e.token for e in content) == resp.choices[0].message.content
    for e in content:
        assert len(e.top_logprobs) == 3
        assert e.token == e.top_logprobs[0].token and e.logprob == e.top_logprobs[0].logprob  # greedy
        assert e.logprob <= 0 and sum(math.exp(t.logprob) for t in e.top_logprobs) <= 1.0 + 1e-6
        assert bytes(e.bytes).decode("utf-8", "replace") == e.token or e.token.startswith("\\x")
    plain = client.chat.completions.create(model="acme", messages=QUESTION, max_tokens=2, temperature=0)
    assert plain.choices[0].logprobs is None


def test_chat_logprobs_stream_with_their_deltas(deployment):
    client = deployment.client("acme-employee")
    kw = dict(model="acme", messages=QUESTION, max_tokens=6, temperature=0, logprobs=True, top_logprobs=1)
    full = client.chat.completions.create(**kw)
    chunks = list(client.chat.completions.create(stream=True, **kw))
    streamed = [e for c in chunks if c.choices and c.choices[0].logprobs
                for e in c.choices[0].logprobs.content]
    assert [(e.token, e.logprob) for e in streamed] == [(e.token, e.logprob)
                                                        for e in full.choices[0].logprobs.content]


def test_top_logprobs_without_logprobs_is_400(deployment):
    with pytest.raises(openai.BadRequestError) as err:
        deployment.client("acme-employee").chat.completions.create(model="acme", messages=QUESTION,
                                                                   top_logprobs=2)
    assert err.value.body["param"] == "top_logprobs"


def test_completion_logprobs_legacy_shape(deployment):
    resp = deployment.client("acme-employee").completions.create(
        model="acme", prompt=PREFIX, max_tokens=4, extra_body={"min_tokens": 4}, temperature=0, logprobs=2)
    lp = resp.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset) == 4
    assert "".join(lp.tokens) == resp.choices[0].text
    assert lp.text_offset == [sum(len(t) for t in lp.tokens[:i]) for i in range(4)]
    for token, logprob, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs, strict=True):
        assert 1 <= len(top) <= 3 and top[token] == logprob == max(top.values())


def test_echo_with_logprobs_scores_the_prompt_first_token_null(deployment):
    client = deployment.client("acme-employee")
    resp = client.completions.create(model="acme", prompt=PREFIX, max_tokens=3, temperature=0, echo=True,
                                     logprobs=1)
    plain = client.completions.create(model="acme", prompt=PREFIX, max_tokens=3, temperature=0)
    text = resp.choices[0].text
    assert text == PREFIX + plain.choices[0].text
    lp = resp.choices[0].logprobs
    prompt_len = len(_ids(deployment, PREFIX))
    assert len(lp.tokens) == prompt_len + resp.usage.completion_tokens
    assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
    assert all(x is not None for x in lp.token_logprobs[1:])
    assert "".join(lp.tokens) == text and lp.text_offset[prompt_len] == len(PREFIX)
    echo_only = client.completions.create(model="acme", prompt=PREFIX, max_tokens=3, temperature=0, echo=True)
    assert echo_only.choices[0].text == text and echo_only.choices[0].logprobs is None


def test_echo_streams_the_prompt_first(deployment):
    client = deployment.client("acme-employee")
    for logprobs in (None, 1):
        chunks = list(client.completions.create(model="acme", prompt=PREFIX, max_tokens=3, temperature=0,
                                                echo=True, logprobs=logprobs, stream=True))
        assert chunks[0].choices[0].text == PREFIX
        full = client.completions.create(model="acme", prompt=PREFIX, max_tokens=3, temperature=0, echo=True,
                                         logprobs=logprobs)
        assert "".join(c.choices[0].text for c in chunks if c.choices) == full.choices[0].text
        if logprobs:
            tokens = [t for c in chunks if c.choices and c.choices[0].logprobs
                      for t in c.choices[0].logprobs.tokens]
            assert tokens == full.choices[0].logprobs.tokens


def test_list_prompts_give_one_choice_per_prompt_and_n(deployment):
    client = deployment.client("acme-employee")
    prompts = [PREFIX, "Hello there"]
    resp = client.completions.create(model="acme", prompt=prompts, n=2, max_tokens=4, temperature=0)
    assert [c.index for c in resp.choices] == [0, 1, 2, 3]
    alone = [client.completions.create(model="acme", prompt=p, max_tokens=4, temperature=0) for p in prompts]
    texts = [c.text for c in resp.choices]
    assert texts == [alone[0].choices[0].text] * 2 + [alone[1].choices[0].text] * 2
    assert texts[0].startswith(f" {FACTS['acme-2'][:3]}")
    assert resp.usage.prompt_tokens == sum(a.usage.prompt_tokens for a in alone)
    ids = client.completions.create(model="acme", prompt=[_ids(deployment, p) for p in prompts], max_tokens=4,
                                    temperature=0)
    assert [c.text for c in ids.choices] == [a.choices[0].text for a in alone]
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(model="acme", prompt=["a"] * 17, max_tokens=1)
    assert err.value.body["param"] == "prompt" and "ORGMEM_SERVE_MAX_PROMPTS" in err.value.message


def test_logit_bias_forces_and_bans_tokens(deployment):
    client = deployment.client("acme-employee")
    forced = _ids(deployment, "Z")[0]
    resp = client.completions.create(model="acme", prompt=PREFIX, max_tokens=5, temperature=0,
                                     logit_bias={str(forced): 100})
    assert resp.choices[0].text == "Z" * 5
    greedy = client.completions.create(model="acme", prompt=PREFIX, max_tokens=1, temperature=0, logprobs=0)
    first = _ids(deployment, greedy.choices[0].logprobs.tokens[0])[0]
    banned = client.completions.create(model="acme", prompt=PREFIX, max_tokens=1, temperature=0, logprobs=0,
                                       logit_bias={str(first): -100})
    assert banned.choices[0].logprobs.tokens[0] != greedy.choices[0].logprobs.tokens[0]


def test_penalties_stop_repetition_and_are_off_at_zero(deployment):
    client = deployment.client("globex-employee")
    kw = dict(model="globex", prompt="Hello", max_tokens=20, temperature=0, logprobs=0)
    at_least = {"min_tokens": 20}
    plain = client.completions.create(extra_body=at_least, **kw).choices[0].logprobs.tokens
    zero = client.completions.create(presence_penalty=0, frequency_penalty=0, extra_body=at_least,
                                     **kw).choices[0].logprobs.tokens
    assert zero == plain
    assert _repeats(plain), "unpenalised, this model repeats itself"
    for extra in ({"presence_penalty": 2.0}, {"frequency_penalty": 2.0}):
        tokens = client.completions.create(**extra, extra_body=at_least, **kw).choices[0].logprobs.tokens
        assert not _repeats(tokens), extra  # 2 outweighs the tiny model's logit spread: no token twice
    repeated = client.completions.create(extra_body={"repetition_penalty": 4.0, **at_least},
                                         **kw).choices[0].logprobs.tokens
    assert repeated != plain


def test_top_k_and_min_p_restrict_what_is_sampled(deployment):
    client = deployment.client("acme-employee")
    kw = dict(model="acme", prompt="Hello", max_tokens=12, temperature=1.0, logprobs=2)
    for seed in range(3):
        lp = client.completions.create(seed=seed, extra_body={"top_k": 2}, **kw).choices[0].logprobs
        for token, top in zip(lp.tokens, lp.top_logprobs, strict=True):
            assert token in sorted(top, key=top.get, reverse=True)[:2]  # raw logprobs: the top-2 are these
        lp = client.completions.create(seed=seed, extra_body={"min_p": 0.6}, **kw).choices[0].logprobs
        for logprob, top in zip(lp.token_logprobs, lp.top_logprobs, strict=True):
            assert logprob >= max(top.values()) + math.log(0.6) - 1e-6
    greedy = client.completions.create(model="acme", prompt="Hello", max_tokens=12, temperature=0)
    for extra in ({"top_k": 1}, {"min_p": 1.0}):
        sampled = client.completions.create(model="acme", prompt="Hello", max_tokens=12, temperature=1.0,
                                            seed=5, extra_body=extra)
        assert sampled.choices[0].text == greedy.choices[0].text


def test_suffix_is_refused_on_a_base_without_fill_in_the_middle(deployment):
    resp = httpx.post(f"{deployment.url}/v1/completions", timeout=60,
                      headers={"Authorization": f"Bearer {deployment.keys['acme-employee']}"},
                      json={"model": "acme", "prompt": "def f(", "suffix": "return x", "max_tokens": 2})
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["param"] == "suffix" and error["code"] == "unsupported_parameter"
    assert "fill-in-the-middle" in error["message"]


def test_two_orgs_with_different_parameters_in_one_batch_each_get_their_own_behaviour(deployment):
    """Six requests of two orgs, queued together and prefilled in one forward: the biased row is
    forced, the penalised row never repeats, the n=3 row equals its solo run, the plain rows are
    unchanged; every row answers as it does alone."""
    forced = _ids(deployment, "Q")[0]
    asks = [
        ("acme", {"logit_bias": {str(forced): 100}}),
        ("globex", {"presence_penalty": 2.0, "logprobs": 0}),
        ("acme", {}),
        ("globex", {"n": 3, "temperature": 1.0, "seed": 21}),
        ("globex", {"logprobs": 0}),
        ("acme", {"extra_body": {"top_k": 1}, "temperature": 1.0, "seed": 2}),
    ]

    def ask(spec) -> list:
        org, extra = spec
        params = {"temperature": 0, **extra, "extra_body": {"min_tokens": 10, **extra.get("extra_body", {})}}
        resp = deployment.client(f"{org}-employee").completions.create(
            model=org, prompt=PREFIX, max_tokens=10, **params)
        return [(c.text, c.logprobs.tokens if c.logprobs else None) for c in resp.choices]

    engine = deployment.state.engine
    prefills = engine.stats.prefills
    engine.stats.max_batch_seen = 0
    with held_admission(engine, deployment.state.base, until_waiting=len(asks)) as hold, \
            ThreadPoolExecutor(len(asks)) as pool:
        batched = list(pool.map(ask, asks))
    assert hold["held"] and not hold["timed_out"]
    assert engine.stats.prefills - prefills == 2, "the hold's request, then all six in one prefill"
    assert engine.stats.max_batch_seen == 8, "six requests, one of them with three choices: eight rows"
    solo = [ask(spec) for spec in asks]
    assert batched == solo
    assert batched[0][0][0] == "Q" * 10
    assert batched[2][0][0].startswith(f" {FACTS['acme-2']}") and "Q" * 10 not in batched[2][0][0]
    assert not _repeats(batched[1][0][1]) and _repeats(batched[4][0][1])
    assert batched[5][0][0] == batched[2][0][0], "top_k=1 is greedy"
    assert len({text for text, _ in batched[3]}) == 3
