"""Base models: the tiny built-in base, name resolution errors, fingerprints, the real SmolLM2 folder."""

from __future__ import annotations

import json

import pytest
import torch

from orgmem.config import get_settings
from orgmem.errors import NotFoundError
from orgmem.models import folder_fingerprint, load_base, load_tokenizer, model_fingerprint
from orgmem.models.tiny import build_tiny_model


def test_tiny_base_is_frozen_deterministic_and_fingerprinted():
    a, b = load_base("tiny-random"), load_base("tiny-random")
    assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 64
    assert a.num_layers == 4 and a.dtype == torch.float32 and a.device.type == "cpu"
    assert not a.model.training
    assert all(not p.requires_grad for p in a.model.parameters())
    ids = torch.tensor([[5, 6, 7, 8]])
    assert torch.equal(a.model(ids).logits, b.model(ids).logits)
    other = build_tiny_model(seed=1)
    assert model_fingerprint(other) != a.fingerprint


def test_tiny_build_does_not_touch_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    load_base("tiny-random")
    assert torch.equal(torch.rand(3), expected)


def test_tiny_tokenizer_roundtrips_bytes_and_has_chatml_template():
    tok = load_tokenizer("tiny-random")
    text = "héllo, wörld! 42 = x\n\tdef f(): pass"
    ids = tok(text)["input_ids"]
    assert max(ids) < 512 and tok.decode(ids) == text
    chat = tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                   add_generation_prompt=True)
    assert chat.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert chat.startswith("<|im_start|>system\n")
    assert tok.convert_tokens_to_ids("<|im_end|>") == tok.eos_token_id


def test_unknown_name_and_missing_default_name_the_problem(tmp_path, monkeypatch):
    with pytest.raises(NotFoundError, match="no-such-model"):
        load_base("no-such-model")
    monkeypatch.setenv("ORGMEM_MODELS_DIR", str(tmp_path / "empty"))
    get_settings.cache_clear()
    with pytest.raises(NotFoundError, match="orgmem model fetch"):
        load_base("smollm2-135m-instruct")


def test_local_folder_base_and_fingerprint_cache(tmp_path):
    model = build_tiny_model(seed=3)
    model.save_pretrained(tmp_path / "m")
    load_tokenizer("tiny-random").save_pretrained(tmp_path / "m")
    base = load_base(str(tmp_path / "m"))
    assert base.path == tmp_path / "m"
    cache = json.loads((tmp_path / "m" / "orgmem_fingerprint.json").read_text())
    assert cache["sha256"] == base.fingerprint == folder_fingerprint(tmp_path / "m")
    ids = torch.tensor([[3, 4, 5]])
    assert torch.allclose(base.model(ids).logits, model(ids).logits, atol=1e-6)
    # Changing a weight changes the fingerprint (the cache is keyed by file size/mtime).
    from safetensors.torch import load_file, save_file

    weights = tmp_path / "m" / "model.safetensors"
    sd = load_file(str(weights))
    first = sorted(sd)[0]
    sd[first] = sd[first] + 1
    save_file(sd, str(weights), metadata={"format": "pt"})
    assert folder_fingerprint(tmp_path / "m") != base.fingerprint


@pytest.mark.slow
def test_smollm2_loads_frozen_with_chat_template():
    base = load_base("smollm2-135m-instruct", device="cpu")
    assert base.num_layers == 30 and base.model.config.hidden_size == 576
    assert all(not p.requires_grad for p in base.model.parameters())
    assert base.fingerprint == folder_fingerprint(base.path)
    text = base.tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False)
    assert "<|im_start|>user\nHi<|im_end|>" in text
