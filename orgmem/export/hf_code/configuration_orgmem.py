"""Configuration of an org model exported by orgmem: a Llama config plus the org's memory stack.

This file is copied into every exported folder and loaded by ``transformers`` with
``trust_remote_code=True``; it imports only ``transformers``. ``orgmem_memory`` describes the
memories applied on top of the frozen base, bottom first (the org memory, then a group's), each
as the components its kind serves with (``cms``, ``lora``, ``titans``); the weights live in the
folder's safetensors under ``orgmem_memory.<layer>.<component>.``. A distinct ``model_type`` means
a plain ``LlamaForCausalLM`` cannot silently load the base without the memory.
"""

from __future__ import annotations

from typing import Any

from transformers import LlamaConfig

try:  # transformers 5 configs are strict dataclasses; 4.x configs take unknown kwargs as attributes
    from huggingface_hub.dataclasses import strict
except ImportError:  # pragma: no cover - older huggingface_hub

    def strict(cls):  # type: ignore[no-redef]
        return cls


@strict
class OrgmemLlamaConfig(LlamaConfig):
    """``LlamaConfig`` with ``orgmem_memory``: ``{"layers": [{"audience", "checkpoint", "components"}]}``."""

    model_type = "orgmem_llama"

    orgmem_memory: dict[str, Any] | None = None
    # orgmem's loader casts the whole base to its serving dtype, the rotary ``inv_freq`` buffer
    # included; transformers keeps that buffer float32. True reproduces orgmem's bf16 serving
    # exactly: ``from_pretrained(DIR, trust_remote_code=True, dtype=torch.bfloat16,
    # orgmem_rope_in_model_dtype=True)``.
    orgmem_rope_in_model_dtype: bool = False
