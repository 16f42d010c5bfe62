"""The ``README.md`` model card of an exported folder: whose memory, which checkpoints, which base.

It names everything needed to trace the folder back to the lineage (org, checkpoint ids, memory
sha256 per checkpoint, base name and fingerprint) and says how to load it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from orgmem.export.memory import ExportLayer


@dataclass(frozen=True)
class CardInfo:
    org: str
    org_name: str
    base_name: str
    base_fingerprint: str
    format: str
    exported_at: datetime
    actor: str


def _memory_table(layers: list[ExportLayer]) -> str:
    rows = ["| audience | checkpoint | kind | memory sha256 |", "|---|---|---|---|"]
    rows += [f"| {m.audience} | `{m.checkpoint_id}` | {m.kind} | `{m.memory_sha256}` |" for m in layers]
    return "\n".join(rows)


def _usage(info: CardInfo) -> str:
    if info.format == "peft":
        return (
            "```python\n"
            "from peft import PeftModel\n"
            "from transformers import AutoModelForCausalLM\n\n"
            f"base = AutoModelForCausalLM.from_pretrained(\"{info.base_name}\")  # the base below\n"
            "model = PeftModel.from_pretrained(base, \"THIS_FOLDER\")\n"
            "```\n\n"
            "vLLM (multi-LoRA): `vllm serve BASE_FOLDER --enable-lora --lora-modules "
            f"{info.org}=THIS_FOLDER` "
            "where BASE_FOLDER is the base with the fingerprint below (orgmem's converted folder).\n"
        )
    return (
        "```python\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
        "model = AutoModelForCausalLM.from_pretrained(\"THIS_FOLDER\", trust_remote_code=True)\n"
        "tokenizer = AutoTokenizer.from_pretrained(\"THIS_FOLDER\", trust_remote_code=True)\n"
        "```\n\n"
        "`trust_remote_code=True` runs `modeling_orgmem.py` (torch + transformers only), which adds the "
        "memory to the Llama forward exactly as orgmem serves it. The memory weights stay float32 in any "
        "load dtype; in bfloat16 add `orgmem_rope_in_model_dtype=True` to compute exactly what orgmem "
        "serves in bfloat16 (its RoPE buffer rounding). See orgmem's `docs/export.md` for vLLM.\n"
    )


def model_card(info: CardInfo, layers: list[ExportLayer]) -> str:
    stack = " + ".join(f"{m.audience}:{m.checkpoint_id}" for m in layers)
    return (
        f"---\nlibrary_name: {'peft' if info.format == 'peft' else 'transformers'}\n"
        f"tags: [orgmem, {', '.join(sorted({m.kind for m in layers}))}]\n---\n\n"
        f"# {info.org_name} ({info.org}): orgmem org model\n\n"
        f"Exported by orgmem from org `{info.org}`, stack `{stack}` (bottom first), as `--format "
        f"{info.format}`, at {info.exported_at.isoformat()} by {info.actor}.\n\n"
        f"{_memory_table(layers)}\n\n"
        f"- base: `{info.base_name}`\n- base fingerprint (sha256 over config + weights): "
        f"`{info.base_fingerprint}`\n\n"
        f"## Load\n\n{_usage(info)}\n"
        "This folder holds what the org's documents taught its memory: share it as you would those "
        "documents.\n"
    )
