"""Penalty, bias, top-k / min-p and logprob math of ``orgmem.serving.sampling`` against references
(HF's logits processors, hand-computed values), and the token texts logprobs report."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import RepetitionPenaltyLogitsProcessor, TopKLogitsWarper
from transformers.generation.logits_process import MinPLogitsWarper

from orgmem.api.openai_choices import chat_logprobs, completion_logprobs
from orgmem.errors import ApiError
from orgmem.models.tiny import build_tiny_tokenizer
from orgmem.serving.generation import encode_fim, fim_ids
from orgmem.serving.logprobs import TokenTexts
from orgmem.serving.sampling import (
    Sampler,
    SamplingError,
    SamplingParams,
    TokenLogprob,
    apply_penalties,
    choice_seed,
    process_rows,
    prompt_logprobs,
    token_logprobs,
)

VOCAB = 12


def _sampler(prompt: list[int], generated: list[int], **params) -> Sampler:
    sampler = Sampler(SamplingParams(**params), prompt_ids=prompt, vocab=VOCAB)
    for token in generated:
        sampler.observe(token)
    return sampler


def test_repetition_penalty_matches_hf_over_prompt_and_generated_tokens():
    logits = torch.randn(3, VOCAB, generator=torch.Generator().manual_seed(0))
    history = [[1, 2, 2], [5, 7], [0, 11, 3]]  # prompt + generated, per row
    samplers = [_sampler(h[:1], h[1:], repetition_penalty=p) for h, p in zip(history, (1.3, 0.7, 2.0),
                                                                              strict=True)]
    ours = process_rows(logits, samplers)
    for i, (h, p) in enumerate(zip(history, (1.3, 0.7, 2.0), strict=True)):
        reference = RepetitionPenaltyLogitsProcessor(p)(torch.tensor([h]), logits[i:i + 1].clone())
        torch.testing.assert_close(ours[i], reference[0])


def test_presence_and_frequency_penalties_by_hand_over_generated_tokens_only():
    logits = torch.zeros(1, VOCAB)
    sampler = _sampler([4, 4, 4], [1, 2, 2, 2], presence_penalty=0.5, frequency_penalty=0.25)
    out = process_rows(logits, [sampler])[0]
    expected = torch.zeros(VOCAB)
    expected[1] = -0.5 - 0.25 * 1
    expected[2] = -0.5 - 0.25 * 3
    torch.testing.assert_close(out, expected)  # token 4 appeared only in the prompt: untouched


def test_penalty_order_is_repetition_then_frequency_and_presence_as_vllm():
    logits = torch.tensor([[2.0, -2.0, 1.0]])
    counts, seen = torch.tensor([[1.0, 2.0, 0.0]]), torch.tensor([[True, True, False]])
    out = apply_penalties(logits, counts, seen, torch.tensor([0.1]), torch.tensor([0.2]), torch.tensor([2.0]))
    torch.testing.assert_close(out, torch.tensor([[2.0 / 2 - 0.2 - 0.1, -2.0 * 2 - 0.4 - 0.1, 1.0]]))


def test_logit_bias_adds_to_its_row_only_and_rows_without_processing_are_not_copied():
    logits = torch.zeros(3, VOCAB)
    plain = Sampler(SamplingParams(temperature=0), vocab=VOCAB)
    biased = Sampler(SamplingParams(temperature=0, logit_bias=((3, 100.0), (4, -7.5))), vocab=VOCAB)
    assert process_rows(logits, [plain, plain]) is logits
    out = process_rows(logits, [plain, biased, plain])
    assert out[0].eq(0).all() and out[2].eq(0).all()
    assert out[1, 3] == 100 and out[1, 4] == -7.5 and out[1].count_nonzero() == 2


def test_top_k_and_min_p_keep_what_hf_warpers_keep():
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(200, generator=gen) * 3
    for params, warper in ((dict(top_k=5), TopKLogitsWarper(5)), (dict(min_p=0.2), MinPLogitsWarper(0.2))):
        allowed = torch.isfinite(warper(None, logits[None].clone())[0]).nonzero().flatten().tolist()
        sampler = Sampler(SamplingParams(temperature=1.0, seed=1, **params))
        drawn = {sampler(logits) for _ in range(300)}
        assert drawn <= set(allowed)
        assert len(drawn) > 1


def test_top_k_one_and_min_p_one_are_greedy():
    logits = torch.randn(100, generator=torch.Generator().manual_seed(4))
    for params in (dict(top_k=1), dict(min_p=1.0), dict(top_k=50, top_p=1e-9)):
        sampler = Sampler(SamplingParams(temperature=1.5, seed=2, **params))
        assert {sampler(logits) for _ in range(50)} == {int(logits.argmax())}


def test_top_k_above_64_with_top_p_takes_the_nucleus_of_the_top_k():
    logits = torch.zeros(1000)  # uniform top-100 (10% of the mass); its nucleus of 0.455 is 46 tokens
    logits[:100] = 5.0
    sampler = Sampler(SamplingParams(temperature=1.0, seed=0, top_k=100, top_p=0.455))
    top, _ = sampler._candidates(torch.softmax(logits, -1))
    assert top.numel() == 46


def test_choice_seeds_are_distinct_reproducible_and_choice_zero_is_the_seed():
    assert choice_seed(7, 0) == 7
    seeds = [choice_seed(7, j) for j in range(8)]
    assert len(set(seeds)) == 8 and seeds == [choice_seed(7, j) for j in range(8)]
    assert all(0 <= s < 2**63 for s in seeds)


def test_token_and_prompt_logprobs_are_raw_log_softmax():
    logits = torch.randn(4, VOCAB, generator=torch.Generator().manual_seed(5))
    logp = torch.log_softmax(logits, -1)
    entries = token_logprobs(logits, [1, 2, 3, 4], [0, 1, 3, 20])
    assert [len(e.top) for e in entries] == [0, 1, 3, VOCAB]
    for i, e in enumerate(entries):
        assert math.isclose(e.logprob, float(logp[i, e.token]), rel_tol=1e-6)
        assert [t for t, _ in e.top] == logp[i].topk(len(e.top)).indices.tolist()
    scored = prompt_logprobs(logits, [9, 1, 2, 3], 2)
    assert scored[0] is None and [e.token for e in scored[1:]] == [1, 2, 3]
    assert math.isclose(scored[1].logprob, float(logp[0, 1]), rel_tol=1e-6)


@pytest.mark.parametrize("params, name", [
    (dict(presence_penalty=2.1), "presence_penalty"), (dict(frequency_penalty=-3), "frequency_penalty"),
    (dict(repetition_penalty=0.0), "repetition_penalty"), (dict(top_k=-1), "top_k"),
    (dict(min_p=1.1), "min_p"), (dict(logit_bias=((1, 100.5),)), "logit_bias"),
    (dict(logprobs=21), "logprobs"), (dict(prompt_logprobs=-1), "prompt_logprobs"),
])
def test_out_of_range_parameters_name_themselves(params, name):
    with pytest.raises(SamplingError) as err:
        SamplingParams(**params)
    assert err.value.param == name and name in str(err.value)


def test_token_texts_give_exact_bytes_of_partial_utf8_tokens():
    tokenizer = build_tiny_tokenizer()  # byte level: one token per byte
    texts = TokenTexts(tokenizer)
    ids = tokenizer("é!", add_special_tokens=False)["input_ids"]
    assert len(ids) == 3
    assert [texts(i)[1] for i in ids] == [[0xC3], [0xA9], [0x21]]
    assert texts(ids[0])[0] == "\\xc3" and texts(ids[2])[0] == "!"
    assert bytes(b for i in ids for b in texts(i)[1]).decode() == "é!"
    assert texts(tokenizer.convert_tokens_to_ids("<|im_end|>")) == ("<|im_end|>", list(b"<|im_end|>"))
    assert texts(len(tokenizer) + 5) == ("", [])  # an id of the model's padding past the tokenizer


def test_openai_logprob_shapes():
    tokenizer = build_tiny_tokenizer()
    texts = TokenTexts(tokenizer)
    a, b = (tokenizer.convert_tokens_to_ids(t) for t in ("a", "b"))
    entries = [TokenLogprob(a, -0.5, ((a, -0.5), (b, -1.5))), TokenLogprob(b, -float("inf"), ((a, -0.1),))]
    chat = chat_logprobs(entries, texts)
    assert chat[0] == {"token": "a", "logprob": -0.5, "bytes": [97], "top_logprobs": [
        {"token": "a", "logprob": -0.5, "bytes": [97]}, {"token": "b", "logprob": -1.5, "bytes": [98]}]}
    assert chat[1]["logprob"] == -9999.0  # JSON has no -Infinity
    legacy, end = completion_logprobs([None, *entries], texts, first_token=b)
    assert legacy == {"tokens": ["b", "a", "b"], "token_logprobs": [None, -0.5, -9999.0],
                      "top_logprobs": [None, {"a": -0.5, "b": -1.5}, {"a": -0.1, "b": -9999.0}],
                      "text_offset": [0, 1, 2]}
    assert end == 3


def test_suffix_needs_fill_in_the_middle_tokens():
    tokenizer = build_tiny_tokenizer()
    assert fim_ids(tokenizer) is None
    with pytest.raises(ApiError) as err:
        encode_fim(tokenizer, "def f(", "return x")
    assert err.value.param == "suffix" and err.value.status == 400
    fim = ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"]
    tokenizer.add_special_tokens({"additional_special_tokens": fim})
    pre, suf, mid = fim_ids(tokenizer)
    ids = encode_fim(tokenizer, "ab", "c")
    assert ids == [pre, *tokenizer("ab", add_special_tokens=False)["input_ids"], suf,
                   *tokenizer("c", add_special_tokens=False)["input_ids"], mid]


def test_inverse_cdf_draws_follow_the_softmax_and_never_a_zero_probability_token():
    logits = torch.tensor([0.0, 1.0, 2.0, -1e9])
    sampler = Sampler(SamplingParams(temperature=1.0, seed=1))
    counts = torch.bincount(torch.tensor([sampler(logits) for _ in range(20000)]), minlength=4) / 20000
    assert counts[3] == 0
    torch.testing.assert_close(counts, torch.softmax(logits, -1), atol=0.01, rtol=0)
