"""``orgmem export`` round trips on the tiny base: the exported folder, loaded with plain
``transformers`` (``trust_remote_code=True``) or ``peft``, computes what the server computes.

Each memory kind's org serves a memory with random non-zero weights; the server's own resolution
and memory cache give the ``RowMemory`` to compare with (``support.py``), and its batched engine
the greedy reply ``generate`` must repeat.
"""

from __future__ import annotations

import json
import threading

import pytest
import torch

from orgmem.checkpoints import MEMORY, load_checkpoint_objects
from orgmem.db.models import Org
from orgmem.db.session import session_scope
from orgmem.lineage.audit import list_audit
from orgmem.memory import build_row_memory
from orgmem.models import load_base
from orgmem.models.tiny import build_tiny_model
from orgmem.models.tokens import encode_chat
from orgmem.serving.engine import Finished, GenerationEngine, GenerationRequest
from orgmem.serving.sampling import SamplingParams
from orgmem.store.base import sha256_hex
from tests.export.helpers import export, greedy_tokens, load_exported, sample_inputs, served_logits
from tests.export.support import KIND_SPECS, _Recorder, kind_org

QUESTION = "What is the vault code?"


def _assert_same_as_served(model, tiny_base, memory) -> None:
    for ids in sample_inputs():
        with torch.inference_mode():
            got = model(input_ids=ids).logits
            bare = tiny_base.model(input_ids=ids).logits
        want = served_logits(tiny_base, memory, ids)
        assert (want - bare).abs().max() > 1e-3, "the memory must change the logits"
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("spec", KIND_SPECS)
def test_hf_export_computes_the_served_logits_and_greedy_tokens(cli_env, tiny_base, tmp_path, spec):
    dep, org, out = cli_env, kind_org(spec), tmp_path / "model"
    data = export(org, str(out))
    (layer,) = data["layers"]
    assert (layer["audience"], layer["checkpoint"], layer["kind"]) == ("org", dep.checkpoints[spec], spec)
    model, tokenizer = load_exported(out)
    assert type(model).__module__.startswith("transformers_modules"), "the folder's own modeling code"
    memory = dep.served_memory(org, org)
    _assert_same_as_served(model, tiny_base, memory)
    prompt = encode_chat(tiny_base.tokenizer, QUESTION)
    assert encode_chat(tokenizer, QUESTION) == prompt, "the exported tokenizer and chat template"
    assert greedy_tokens(model, prompt, 12) == dep.served_tokens(prompt, memory, 12)


def test_hf_folder_has_config_code_weights_and_a_model_card(cli_env, tmp_path):
    dep, out = cli_env, tmp_path / "model"
    data = export("acme", str(out))
    assert [m["checkpoint"] for m in data["layers"]] == [dep.checkpoints["acme-2"]], "the served checkpoint"
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "configuration_orgmem.py", "modeling_orgmem.py", "generation_config.json",
            "model.safetensors.index.json", "tokenizer.json", "README.md"} <= names
    assert set(data["files"]) == names
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "orgmem_llama" and config["architectures"] == ["OrgmemLlamaForCausalLM"]
    assert config["auto_map"]["AutoModelForCausalLM"] == "modeling_orgmem.OrgmemLlamaForCausalLM"
    index = json.loads((out / "model.safetensors.index.json").read_text())["weight_map"]
    assert any(k.startswith("orgmem_memory.0.0.") for k in index) and "model.embed_tokens.weight" in index
    card = (out / "README.md").read_text()
    named = ("acme", dep.checkpoints["acme-2"], data["base_fingerprint"], data["layers"][0]["memory_sha256"])
    for text in named:
        assert text in card
    with session_scope(dep.settings.database_url) as s:
        org = s.query(Org).filter_by(slug="acme").one()
        events = list_audit(s, org.id, action="model.export")
    assert events and events[-1].target == dep.checkpoints["acme-2"]
    assert events[-1].data["format"] == "hf" and events[-1].data["dir"] == str(out)


def test_named_checkpoint_exports_that_checkpoint(cli_env, tiny_base, tmp_path):
    dep, ck = cli_env, cli_env.checkpoints["acme-1"]
    data = export(f"acme@{ck}", str(tmp_path / "model"))
    assert [m["checkpoint"] for m in data["layers"]] == [ck]
    model, _ = load_exported(tmp_path / "model")
    _assert_same_as_served(model, tiny_base, dep.served_memory("acme", f"acme@{ck}"))


def test_a_group_checkpoint_named_alone_exports_alone_as_it_is_served(cli_env, tiny_base, tmp_path):
    dep, ck = cli_env, cli_env.checkpoints["legal-1"]
    data = export(f"acme@{ck}", str(tmp_path / "model"))
    assert [(m["audience"], m["checkpoint"]) for m in data["layers"]] == [("legal", ck)]
    model, _ = load_exported(tmp_path / "model")
    _assert_same_as_served(model, tiny_base, dep.served_memory("acme-legal-admin", f"acme@{ck}"))


def test_group_export_equals_the_served_stack(cli_env, tiny_base, tmp_path):
    dep, out = cli_env, tmp_path / "model"
    data = export("acme", str(out), "--group", "legal")
    assert [(m["audience"], m["checkpoint"]) for m in data["layers"]] == [
        ("org", dep.checkpoints["acme-2"]), ("legal", dep.checkpoints["legal-1"])]
    model, tokenizer = load_exported(out)
    stacked = dep.served_memory("acme-legal", "acme")  # a key carrying the group: org + legal
    org_only = dep.served_memory("acme", "acme")
    assert len(stacked.modules) == 2 * len(org_only.modules)
    _assert_same_as_served(model, tiny_base, stacked)
    ids = sample_inputs(seed=1)[2]
    group_term = served_logits(tiny_base, stacked, ids) - served_logits(tiny_base, org_only, ids)
    assert group_term.abs().max() > 1e-3, "the group memory must change the logits"
    prompt = encode_chat(tiny_base.tokenizer, QUESTION)
    assert greedy_tokens(model, prompt, 12) == dep.served_tokens(prompt, stacked, 12)


def test_bfloat16_export_keeps_memory_float32_and_computes_bfloat16_serving(cli_env, tmp_path):
    """Loaded in bf16, the memory stays fp32 (as orgmem serves it on a bf16 base), and with
    ``orgmem_rope_in_model_dtype=True`` (RoPE's ``inv_freq`` rounded to bf16, as orgmem's loader
    casts every buffer where transformers keeps that one fp32) the logits are the served bf16 ones."""
    from transformers import AutoModelForCausalLM

    org = kind_org("cms+titans")
    export(org, str(tmp_path / "model"))
    model = AutoModelForCausalLM.from_pretrained(str(tmp_path / "model"), trust_remote_code=True,
                                                 dtype=torch.bfloat16, orgmem_rope_in_model_dtype=True)
    memory_dtypes = {p.dtype for n, p in model.named_parameters() if n.startswith("orgmem_memory.")}
    assert memory_dtypes == {torch.float32} and model.model.embed_tokens.weight.dtype == torch.bfloat16
    base16 = load_base("tiny-random", device="cpu", dtype=torch.bfloat16)
    with session_scope(cli_env.settings.database_url) as s:
        ck = cli_env.checkpoints["cms+titans"]
        data = load_checkpoint_objects(s, cli_env.state.store, ck, [MEMORY])[MEMORY]
    served = build_row_memory(base16, data, sha256=sha256_hex(data), source="bf16 test")
    for ids in sample_inputs():
        with torch.inference_mode():
            got = model(input_ids=ids).logits
        assert got.dtype == torch.bfloat16
        torch.testing.assert_close(got, served_logits(base16, served, ids), atol=1e-5, rtol=0)
    prompt = encode_chat(base16.tokenizer, QUESTION)
    engine = GenerationEngine(base16).start()
    try:
        done = threading.Event()
        taken = _Recorder()
        engine.submit(GenerationRequest(prompt_ids=prompt, memory=served, constraint=taken,
                                        on_event=lambda e: done.set() if isinstance(e, Finished) else None,
                                        params=SamplingParams(max_tokens=12, temperature=0)))
        assert done.wait(60)
    finally:
        engine.stop()
    assert greedy_tokens(model, prompt, 12) == taken.tokens


def test_lora_peft_adapter_loads_in_peft_with_the_served_logits(cli_env, tiny_base, tmp_path):
    from peft import PeftModel

    dep, org, out = cli_env, kind_org("lora"), tmp_path / "adapter"
    data = export(org, str(out), "--format", "peft")
    assert sorted(data["files"]) == [".orgmem-export.json", "README.md", "adapter_config.json",
                                     "adapter_model.safetensors"]
    config = json.loads((out / "adapter_config.json").read_text())
    assert (config["peft_type"], config["r"], config["lora_alpha"]) == ("LORA", 16, 32)
    assert config["lora_dropout"] == 0.0 and config["bias"] == "none"
    assert config["target_modules"] and all(t.startswith("model.layers.") for t in config["target_modules"])
    model = PeftModel.from_pretrained(build_tiny_model(), str(out)).eval()
    _assert_same_as_served(model, tiny_base, dep.served_memory(org, org))


@pytest.mark.parametrize("spec", ["cms", "cms+lora"])
def test_peft_format_refuses_a_memory_that_is_not_lora_alone(cli_env, tmp_path, spec):
    result = export(kind_org(spec), str(tmp_path / "adapter"), "--format", "peft", code=1)
    assert f"is {spec!r}" in result.stderr and "--format hf" in result.stderr
    assert not (tmp_path / "adapter").exists(), "a refused export leaves nothing behind"


_WITHOUT_ORGMEM = """
import sys
sys.modules["orgmem"] = None  # any import of orgmem now fails: the folder must not need it
import torch
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], trust_remote_code=True, dtype=torch.float32)
ids = torch.load(sys.argv[2])
with torch.inference_mode():
    torch.save(model(input_ids=ids).logits, sys.argv[3])
"""


def test_the_folder_loads_in_a_process_where_orgmem_cannot_be_imported(cli_env, tiny_base, tmp_path):
    import os
    import subprocess
    import sys

    org = kind_org("cms+titans")
    export(org, str(tmp_path / "model"))
    ids = sample_inputs(seed=3)[2]
    torch.save(ids, tmp_path / "ids.pt")
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-c", _WITHOUT_ORGMEM, str(tmp_path / "model"), str(tmp_path / "ids.pt"),
                    str(tmp_path / "logits.pt")], check=True, env=env, cwd=tmp_path, timeout=300)
    got = torch.load(tmp_path / "logits.pt")
    torch.testing.assert_close(got, served_logits(tiny_base, cli_env.served_memory(org, org), ids),
                               atol=1e-5, rtol=0)


def test_org_exports_its_pinned_checkpoint_as_serving_does(cli_env, tmp_path):
    from orgmem.lineage import pin, unpin

    dep, first = cli_env, cli_env.checkpoints["acme-1"]
    with session_scope(dep.settings.database_url, write=True) as s:
        pin(s, "acme", first, actor="test", reason="export test")
    try:
        data = export("acme", str(tmp_path / "model"))
        assert [m["checkpoint"] for m in data["layers"]] == [first]
        assert dep.served_memory("acme", "acme").sha256 == data["layers"][0]["memory_sha256"]
    finally:
        with session_scope(dep.settings.database_url, write=True) as s:
            unpin(s, "acme", actor="test")
