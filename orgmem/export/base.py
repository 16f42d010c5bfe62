"""The frozen base's part of an exported folder: its weights, config, tokenizer and stop ids.

A base loaded from a folder (SmolLM2, any local HF Llama folder) contributes its safetensors files
byte for byte, renamed as the first shards of the export (the weights the fingerprint was taken
over); a base built in code (``tiny-random``) is written from its float32 state. Tokenizer files and
the chat template are copied from the folder, or saved from the tokenizer when there is none.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from orgmem.errors import OrgmemError
from orgmem.models.tokens import eos_token_ids

SUPPORTED_MODEL_TYPES = ("llama",)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "chat_template.jinja", "chat_template.json", "tokenizer.model", "vocab.json", "merges.txt",
                   "added_tokens.json")


@dataclass(frozen=True)
class BaseShard:
    """One file of base weights in the export: the file it comes from (None: written from memory)."""

    source: Path | None
    keys: list[str]
    nbytes: int


def base_config(base) -> dict[str, Any]:
    """The base's config dict; a base that is not Llama-architecture is refused by name."""
    config = base.model.config.to_dict()
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise OrgmemError(f"base {base.name!r} is a {model_type!r} model: export supports "
                          f"{', '.join(SUPPORTED_MODEL_TYPES)} bases only")
    if base.path is not None and (base.path / "config.json").is_file():
        config = {**config, **json.loads((base.path / "config.json").read_text())}
    return config


def _tensor_bytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def base_shards(base) -> list[BaseShard]:
    """The base's weight files: a folder's own safetensors, or the in-code base's state (one shard)."""
    if base.path is not None:
        files = sorted(Path(base.path).glob("*.safetensors"))
        if not files:
            raise OrgmemError(f"base {base.name!r} folder {base.path} has no *.safetensors weights to export")
        shards = []
        for path in files:
            with safe_open(str(path), framework="pt") as f:
                keys = list(f.keys())
                nbytes = sum(_slice_bytes(f, k) for k in keys)
            shards.append(BaseShard(path, keys, nbytes))
        return shards
    state = _in_code_state(base)
    return [BaseShard(None, sorted(state), sum(_tensor_bytes(t) for t in state.values()))]


def _slice_bytes(f: Any, key: str) -> int:
    piece = f.get_slice(key)
    n = 1
    for d in piece.get_shape():
        n *= int(d)
    return n * _DTYPE_BYTES.get(piece.get_dtype(), 4)


_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


def _in_code_state(base) -> dict[str, torch.Tensor]:
    """float32 state of a base built in code, without the lm_head when it is tied to the embeddings."""
    tied = bool(getattr(base.model.config, "tie_word_embeddings", False))
    return {k: v.detach().float().cpu().contiguous() for k, v in base.model.state_dict().items()
            if not (tied and k == "lm_head.weight")}


def write_base_shard(base, shard: BaseShard, target: Path) -> None:
    """Copy a folder's weight file, or write the in-code base's state, to ``target``."""
    if shard.source is not None:
        shutil.copyfile(shard.source, target)
        return
    save_file(_in_code_state(base), str(target), metadata={"format": "pt"})


def write_tokenizer(base, out: Path) -> list[str]:
    """The tokenizer files and chat template: copied from the base folder, else saved; names written."""
    if base.path is not None:
        copied = []
        for name in TOKENIZER_FILES:
            src = Path(base.path) / name
            if src.is_file():
                shutil.copyfile(src, out / name)
                copied.append(name)
        if copied:
            return copied
    before = {p.name for p in out.iterdir()}
    base.tokenizer.save_pretrained(str(out))
    return sorted({p.name for p in out.iterdir()} - before)


def generation_config(base) -> dict[str, Any]:
    """The base's generation config with orgmem's end-of-turn ids, so ``generate`` stops where the
    server stops (``orgmem.serving.engine``)."""
    generation = getattr(base.model, "generation_config", None)
    config = generation.to_diff_dict() if generation is not None else {}
    config = {k: v for k, v in config.items() if not k.startswith("_") and k != "transformers_version"}
    stops = sorted(eos_token_ids(base.tokenizer, base.model))
    config["eos_token_id"] = stops[0] if len(stops) == 1 else stops
    if base.tokenizer.pad_token_id is not None:
        config["pad_token_id"] = int(base.tokenizer.pad_token_id)
    return config
