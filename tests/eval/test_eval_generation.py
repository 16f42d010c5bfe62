"""Batched greedy generation: same tokens as one-by-one decoding, stops at the end token."""

from __future__ import annotations

import pytest
import torch

from orgmem.eval.generation import encode_text, greedy_generate, length_batches
from orgmem.models.tokens import encode_chat, pad_token_id, stop_token_ids
from tests.eval.conftest import FACT


def test_batched_equals_unbatched_and_hf_generate(tiny):
    tok = tiny.tokenizer
    prompts = [encode_text(tok, t) for t in ("a", "The dock controller", "Hello there, how are you today?")]
    kw = dict(pad_id=pad_token_id(tok), stop_ids=stop_token_ids(tok, tiny.model), max_new_tokens=6)
    batched = greedy_generate(tiny.model, prompts, batch_size=3, **kw)
    single = greedy_generate(tiny.model, prompts, batch_size=1, **kw)
    assert [g.ids for g in batched] == [g.ids for g in single]
    hf = tiny.model.generate(torch.tensor([prompts[1]]), max_new_tokens=6, do_sample=False)
    assert hf[0, len(prompts[1]):].tolist()[: len(single[1].ids)] == single[1].ids


def test_stops_at_end_token(tiny, taught):
    tok = tiny.tokenizer
    [gen] = greedy_generate(taught, [encode_chat(tok, FACT.question)], pad_id=pad_token_id(tok),
                            stop_ids=stop_token_ids(tok, taught), max_new_tokens=20)
    assert gen.stopped and tok.decode(gen.ids) == "6291"
    assert gen.scored_ids == gen.ids + [tok.convert_tokens_to_ids("<|im_end|>")]


def test_bad_arguments_are_named(tiny):
    with pytest.raises(ValueError, match="index \\[1\\]"):
        greedy_generate(tiny.model, [[1, 2], []], pad_id=0, stop_ids={2})
    with pytest.raises(ValueError, match="max_new_tokens"):
        greedy_generate(tiny.model, [[1]], pad_id=0, stop_ids={2}, max_new_tokens=0)
    with pytest.raises(ValueError, match="batch_size"):
        length_batches([1, 2], 0)


def test_length_batches_group_similar_lengths_deterministically():
    assert length_batches([3, 9, 1, 9, 4], 2) == [[1, 3], [4, 0], [2]]
