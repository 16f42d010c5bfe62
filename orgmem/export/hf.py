"""``--format hf``: a standalone Hugging Face model folder (base + memory + modeling code).

Layout: ``config.json`` (the base's Llama config, ``model_type`` ``orgmem_llama``, ``auto_map`` to
the two code files, ``orgmem_memory`` the stack spec), ``configuration_orgmem.py`` and
``modeling_orgmem.py`` (copied from ``orgmem/export/hf_code``: torch + transformers only), the
base's weight files as the first shards and the memory as the last (``model.safetensors.index.json``
maps every tensor), ``generation_config.json`` (orgmem's end-of-turn ids), the tokenizer files and
chat template, and a ``README.md`` model card.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from safetensors.torch import save_file
from torch import Tensor

from orgmem.export.base import base_config, base_shards, generation_config, write_base_shard, write_tokenizer
from orgmem.export.memory import ExportLayer

CODE_DIR = Path(__file__).with_name("hf_code")
CODE_FILES = ("configuration_orgmem.py", "modeling_orgmem.py")
MODEL_TYPE = "orgmem_llama"
ARCHITECTURE = "OrgmemLlamaForCausalLM"
AUTO_MAP = {"AutoConfig": "configuration_orgmem.OrgmemLlamaConfig",
            "AutoModelForCausalLM": "modeling_orgmem.OrgmemLlamaForCausalLM"}
MEMORY_PREFIX = "orgmem_memory"
INDEX_FILE = "model.safetensors.index.json"


def memory_tensors(layers: list[ExportLayer]) -> dict[str, Tensor]:
    """Every memory tensor under ``orgmem_memory.<layer>.<component>.<name>`` (the modeling code's names)."""
    out: dict[str, Tensor] = {}
    for li, layer in enumerate(layers):
        for ci, component in enumerate(layer.components):
            out |= {f"{MEMORY_PREFIX}.{li}.{ci}.{k}": v for k, v in component.tensors.items()}
    return out


def hf_config(base, layers: list[ExportLayer]) -> dict[str, Any]:
    config = base_config(base)
    config.pop("_name_or_path", None)
    config.pop("_model_name_or_path", None)
    config |= {"model_type": MODEL_TYPE, "architectures": [ARCHITECTURE], "auto_map": dict(AUTO_MAP),
               "orgmem_memory": {"layers": [layer.spec() for layer in layers]}}
    return config


def write_hf_folder(out: Path, base, layers: list[ExportLayer]) -> list[str]:
    """Write the folder into the (empty) directory ``out``; returns the file names written."""
    shards = base_shards(base)
    memory = memory_tensors(layers)
    total = len(shards) + 1
    names = [f"model-{i:05d}-of-{total:05d}.safetensors" for i in range(1, total + 1)]
    weight_map: dict[str, str] = {}
    for shard, name in zip(shards, names, strict=False):
        write_base_shard(base, shard, out / name)
        weight_map |= dict.fromkeys(shard.keys, name)
    save_file(memory, str(out / names[-1]), metadata={"format": "pt"})
    weight_map |= dict.fromkeys(memory, names[-1])
    size = sum(s.nbytes for s in shards) + sum(t.numel() * t.element_size() for t in memory.values())
    index = {"metadata": {"total_size": size}, "weight_map": dict(sorted(weight_map.items()))}
    (out / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")
    (out / "config.json").write_text(json.dumps(hf_config(base, layers), indent=2, sort_keys=True) + "\n")
    (out / "generation_config.json").write_text(json.dumps(generation_config(base), indent=2) + "\n")
    for name in CODE_FILES:
        shutil.copyfile(CODE_DIR / name, out / name)
    tokenizer_files = write_tokenizer(base, out)
    return [*names, INDEX_FILE, "config.json", "generation_config.json", *CODE_FILES, *tokenizer_files]
