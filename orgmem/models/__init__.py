"""Base models: frozen LLMs that org memories attach to.

Public API (stable; used by memory, engine, eval, serving):

- ``load_base(name=None, device=None) -> BaseModel`` — ``name`` is ``"smollm2-135m-instruct"``
  (default, converted folder under ``settings.models_dir``), ``"tiny-random"`` (built in code, for
  tests) or a local HF Llama-family folder. ``BaseModel`` has ``name, model, tokenizer, fingerprint,
  device, dtype, path, num_layers, cache_dir``. The model is in eval mode with ``requires_grad=False``.
- ``load_tokenizer(name=None)`` — just the tokenizer.
- ``resolve_device(device) -> (torch.device, torch.dtype)`` — ``auto`` → cuda/bf16 else cpu/fp32.
- ``fetch_default_model(models_dir=None, force=False) -> Path`` — ``python -m orgmem.models.fetch``.
- ``model_fingerprint(model)``, ``folder_fingerprint(path)`` — sha256 over config + weights.
- ``orgmem.models.layers``: a base's parts for running it piece by piece — ``decoder_layers``,
  ``embed``, ``run_layers(model, hidden, start, end)`` (a slice of decoder layers), ``final_hidden``,
  ``lm_logits``, ``model_device``.
- ``orgmem.models.tokens``: how a base is asked and where it stops — ``encode_chat``,
  ``has_chat_template``, ``eos_token_ids``, ``stop_token_ids``, ``pad_token_id``.
"""

from pathlib import Path

from orgmem.models.fingerprint import folder_fingerprint, model_fingerprint
from orgmem.models.loader import BaseModel, load_base, load_tokenizer, resolve_device


def fetch_default_model(models_dir: Path | None = None, force: bool = False) -> Path:
    """Lazy wrapper so ``python -m orgmem.models.fetch`` does not import its module twice."""
    from orgmem.models.fetch import fetch_default_model as _fetch

    return _fetch(models_dir, force)


__all__ = [
    "BaseModel",
    "fetch_default_model",
    "folder_fingerprint",
    "load_base",
    "load_tokenizer",
    "model_fingerprint",
    "resolve_device",
]
