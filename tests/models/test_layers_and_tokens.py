"""The base-model helpers everyone shares: a slice-by-slice run equals the model's own forward, and
the prompt, stop and pad ids are what evaluation, training and serving all rely on."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from orgmem.models import load_base
from orgmem.models.layers import decoder_layers, embed, final_hidden, lm_logits, model_device, run_layers
from orgmem.models.tokens import encode_chat, eos_token_ids, has_chat_template, pad_token_id, stop_token_ids


@pytest.fixture(scope="module")
def base():
    return load_base("tiny-random", device="cpu")


def test_running_the_layers_in_slices_equals_the_full_forward(base):
    model, ids = base.model, torch.tensor([[5, 6, 7, 8, 9, 10]])
    with torch.no_grad():
        lower = run_layers(model, embed(model, ids), 0, 2)
        top = run_layers(model, lower, 2, len(decoder_layers(model)))
        torch.testing.assert_close(lm_logits(model, final_hidden(model, top)), model(ids).logits)


def test_model_device_of_a_module_without_weights_is_the_cpu(base):
    assert model_device(base.model) == torch.device("cpu")
    assert model_device(nn.Identity()) == torch.device("cpu")
    with pytest.raises(TypeError, match="Llama-family"):
        decoder_layers(nn.Linear(2, 2))


def test_a_base_without_template_is_asked_in_plain_chatml(base):
    tok = copy.deepcopy(base.tokenizer)
    tok.chat_template = None
    assert not has_chat_template(tok)
    expected = tok("<|im_start|>user\nwho?<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False)
    assert encode_chat(tok, "who?") == list(expected["input_ids"])
    assert encode_chat(tok, [{"role": "user", "content": "who?"}]) == encode_chat(tok, "who?")


def test_a_base_with_template_is_asked_through_it(base):
    tok = base.tokenizer
    assert has_chat_template(tok)
    text = tok.apply_chat_template([{"role": "user", "content": "who?"}], add_generation_prompt=True,
                                   tokenize=False)
    assert encode_chat(tok, "who?") == list(tok(text, add_special_tokens=False)["input_ids"])


def test_stop_ids_add_end_of_turn_tokens_to_the_declared_eos(base):
    tok = base.tokenizer
    eos = eos_token_ids(tok, base.model)
    assert tok.eos_token_id in eos
    assert eos <= stop_token_ids(tok, base.model)
    named = {tok.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>") if t in tok.get_vocab()}
    assert named <= stop_token_ids(tok, base.model)
    listed = SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=[3, 4]))
    assert {3, 4} <= eos_token_ids(tok, listed)


@pytest.mark.parametrize(("pad", "eos", "expected"), [(7, 2, 7), (None, 2, 2), (None, None, 0), (0, 2, 0)])
def test_pad_id_falls_back_to_eos_then_zero(pad, eos, expected):
    assert pad_token_id(SimpleNamespace(pad_token_id=pad, eos_token_id=eos)) == expected
