"""``--format peft``: a ``lora`` memory as a PEFT adapter folder (``adapter_config.json`` +
``adapter_model.safetensors``) for ``peft.PeftModel.from_pretrained(base, DIR)`` and vLLM's
multi-LoRA serving (``vllm serve BASE --enable-lora --lora-modules org=DIR``).

orgmem's LoRA is peft's own (``orgmem.memory.lora``: dropout 0, scale alpha / r, no bias), so the
adapter is the saved A and B under peft's key names. ``target_modules`` lists the adapted modules
by full path, so every consumer adapts exactly those (no ``layers_to_transform`` to interpret).
Only a stack of exactly one memory whose only component is ``lora`` is a PEFT adapter: CMS and
Titans terms have no PEFT form, and two LoRA memories would need two adapters at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import save_file
from torch import Tensor

from orgmem.errors import OrgmemError
from orgmem.export.memory import ExportLayer

PEFT_PREFIX = "base_model.model."
CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"


def lora_spec(layers: list[ExportLayer]) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """The one lora component of a one-memory stack; anything else is refused naming what it is."""
    if len(layers) != 1:
        stack = " + ".join(f"{layer.audience}:{layer.checkpoint_id}" for layer in layers)
        raise OrgmemError(f"--format peft exports one lora memory; the stack {stack} has {len(layers)} "
                          "(export it with --format hf)")
    layer = layers[0]
    if [c.spec["kind"] for c in layer.components] != ["lora"]:
        raise OrgmemError(f"--format peft exports a 'lora' memory; checkpoint {layer.checkpoint_id!r} is "
                          f"{layer.kind!r} (export it with --format hf)")
    component = layer.components[0]
    return component.spec, component.tensors


def adapter_config(spec: dict[str, Any], base_model: str) -> dict[str, Any]:
    """peft's ``LoraConfig`` as saved by ``save_pretrained`` (built by peft itself, so its fields match)."""
    from peft import LoraConfig

    config = LoraConfig(r=int(spec["r"]), lora_alpha=int(spec["alpha"]), lora_dropout=0.0,
                        target_modules=list(spec["paths"]), bias="none", task_type="CAUSAL_LM",
                        base_model_name_or_path=base_model, inference_mode=True)
    data = config.to_dict()
    return {k: sorted(v) if isinstance(v, set) else v for k, v in data.items()}


def write_peft_folder(out: Path, layers: list[ExportLayer], base_model: str) -> list[str]:
    """Write the adapter into the (empty) directory ``out``; returns the file names written."""
    spec, tensors = lora_spec(layers)
    state: dict[str, Tensor] = {}
    for n, path in enumerate(spec["paths"]):
        state[f"{PEFT_PREFIX}{path}.lora_A.weight"] = tensors[f"{n}.lora_A"]
        state[f"{PEFT_PREFIX}{path}.lora_B.weight"] = tensors[f"{n}.lora_B"]
    save_file(state, str(out / WEIGHTS_FILE), metadata={"format": "pt"})
    config = adapter_config(spec, base_model)
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True, default=str) + "\n")
    return [CONFIG_FILE, WEIGHTS_FILE]
