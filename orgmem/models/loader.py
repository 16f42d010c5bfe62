"""Resolve a base-model name to a frozen model + tokenizer + fingerprint.

Names: ``smollm2-135m-instruct`` (the converted folder under ``settings.models_dir``),
``tiny-random`` (built in code), or a path to any local Hugging Face Llama-family folder.
The base is always frozen (eval mode, no grads): memory kinds add trainable weights beside it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from orgmem.config import DEFAULT_BASE_MODEL, TINY_BASE_MODEL, get_settings
from orgmem.errors import NotFoundError, OrgmemError
from orgmem.models.fingerprint import folder_fingerprint, model_fingerprint
from orgmem.models.tiny import build_tiny_model, build_tiny_tokenizer

logger = logging.getLogger(__name__)


@dataclass
class BaseModel:
    """A frozen base LLM shared by every org's memory."""

    name: str
    model: PreTrainedModel
    tokenizer: Any  # a transformers tokenizer (fast or slow; their common base is not typed)
    fingerprint: str
    device: torch.device
    dtype: torch.dtype
    path: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def num_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    @property
    def cache_dir(self) -> Path:
        """Per-base folder for derived artefacts (rehearsal text, meta-trained inits)."""
        root = get_settings().models_root
        safe = self.name if self.path is None else self.path.name
        return root / "_derived" / f"{safe}-{self.fingerprint[:12]}"


def resolve_device(device: str | torch.device | None = None) -> tuple[torch.device, torch.dtype]:
    """``auto`` → cuda (bf16 when supported) else cpu fp32 (bf16 is 5.7x slower on this CPU)."""
    spec = str(device or get_settings().device)
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(spec)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise OrgmemError(f"device {spec!r} requested but CUDA is not available")
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
        return dev, dtype
    return dev, torch.float32


def resolve_folder(name: str) -> Path:
    """Folder holding the HF files for ``name`` (a known name under models_dir or a path)."""
    models_dir = get_settings().models_root
    candidate = models_dir / name
    if candidate.is_dir():
        return candidate
    if name == DEFAULT_BASE_MODEL:
        raise NotFoundError(
            f"base model {name!r} not found at {candidate}: run `orgmem model fetch` "
            "(or `python -m orgmem.models.fetch`) once to download and convert it"
        )
    path = Path(name).expanduser()
    if path.is_dir() and (path / "config.json").exists():
        return path
    raise NotFoundError(
        f"base model {name!r} is neither {DEFAULT_BASE_MODEL!r}, {TINY_BASE_MODEL!r} "
        f"nor a local Hugging Face model folder with a config.json"
    )


def load_tokenizer(name: str | None = None):
    """The tokenizer of base ``name`` (default: ``settings.base_model``)."""
    name = name or get_settings().base_model
    if name == TINY_BASE_MODEL:
        return build_tiny_tokenizer()
    return _from_local(AutoTokenizer, resolve_folder(name))


def _from_local(cls: Any, folder: Path, **kwargs: Any) -> Any:
    """``cls.from_pretrained`` of a local folder, never a download from the hub (offline by design:
    ``local_files_only`` makes that a rule, not only ``HF_HUB_OFFLINE``; bandit B615)."""
    return cls.from_pretrained(str(folder), local_files_only=True, **kwargs)


def _freeze(model: PreTrainedModel, device: torch.device, dtype: torch.dtype) -> PreTrainedModel:
    model = model.to(device=device, dtype=dtype).eval()  # type: ignore[call-arg]  # transformers' wrapper
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def load_base(
    name: str | None = None, device: str | torch.device | None = None, dtype: torch.dtype | None = None
) -> BaseModel:
    """Load base ``name`` frozen on ``device`` (default: settings), in ``dtype`` (default: the
    device's training dtype; serving passes ``orgmem.models.precision.serving_dtype``)."""
    name = name or get_settings().base_model
    dev, training_dtype = resolve_device(device)
    dtype = dtype or training_dtype
    t0 = time.time()
    if name == TINY_BASE_MODEL:
        model = build_tiny_model()
        fingerprint = model_fingerprint(model)  # of the fp32 weights, whatever dtype it runs in
        base = BaseModel(name, _freeze(model, dev, dtype), build_tiny_tokenizer(), fingerprint, dev, dtype)
    else:
        folder = resolve_folder(name)
        if (folder / "config.json").exists() is False:
            raise NotFoundError(f"base model folder {folder} has no config.json")
        model = _from_local(AutoModelForCausalLM, folder, dtype=dtype)
        if getattr(model.config, "model_type", "") not in ("llama", "mistral", "qwen2"):
            logger.warning("base is not a Llama-family model; memory kinds may not attach",
                           extra={"base": name, "model_type": model.config.model_type})
        tok = _from_local(AutoTokenizer, folder)
        base = BaseModel(name, _freeze(model, dev, dtype), tok, folder_fingerprint(folder),
                         dev, dtype, path=folder)
    if base.tokenizer.pad_token is None:
        base.tokenizer.pad_token = base.tokenizer.eos_token
    logger.info("base model loaded", extra={"base": name, "device": str(dev), "dtype": str(dtype),
                                            "fingerprint": base.fingerprint[:12],
                                            "seconds": round(time.time() - t0, 2)})
    return base
