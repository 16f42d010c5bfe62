"""Base-model fingerprints: sha256 over the config and every weight tensor.

A memory state is only meaningful on the exact base it was trained on, so every checkpoint records
the fingerprint and loading onto another base is refused. Hashing a 538 MB folder takes seconds,
so the result is cached in ``<folder>/orgmem_fingerprint.json`` keyed by the files' sizes/mtimes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path

import torch
from transformers import PreTrainedModel

logger = logging.getLogger(__name__)

CACHE_FILE = "orgmem_fingerprint.json"
_VOLATILE_CONFIG_KEYS = ("transformers_version", "_name_or_path", "torch_dtype", "dtype")


def canonical_config(config: dict) -> bytes:
    """Config JSON without fields that change with the library version or load dtype."""
    clean = {k: v for k, v in config.items() if k not in _VOLATILE_CONFIG_KEYS}
    return json.dumps(clean, sort_keys=True, default=str).encode()


def _tensor_bytes(t: torch.Tensor) -> bytes:
    return t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes()


def hash_weights(config: dict, tensors: Iterable[tuple[str, torch.Tensor]]) -> str:
    """sha256 over the canonical config then (name, dtype, shape, bytes) of tensors in name order."""
    h = hashlib.sha256(canonical_config(config))
    for name, t in sorted(tensors, key=lambda kv: kv[0]):
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(_tensor_bytes(t))
    return h.hexdigest()


def model_fingerprint(model: PreTrainedModel) -> str:
    """Fingerprint of an in-memory model (used for bases built in code, e.g. ``tiny-random``)."""
    return hash_weights(model.config.to_dict(), model.state_dict().items())


def _weight_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.safetensors"))


def _stamp(folder: Path) -> list[list]:
    files = [folder / "config.json", *_weight_files(folder)]
    return [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]


def _iter_folder_tensors(folder: Path) -> Iterable[tuple[str, torch.Tensor]]:
    from safetensors import safe_open

    for path in _weight_files(folder):
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                yield key, f.get_tensor(key)


def folder_fingerprint(folder: Path) -> str:
    """Fingerprint of a HF safetensors folder, cached next to the weights when writable."""
    folder = Path(folder)
    cache = folder / CACHE_FILE
    stamp = _stamp(folder)
    if cache.exists():
        try:
            data = json.loads(cache.read_text())
            if data.get("stamp") == stamp:
                return str(data["sha256"])
        except (ValueError, KeyError):
            logger.warning("ignoring unreadable fingerprint cache", extra={"path": str(cache)})
    config = json.loads((folder / "config.json").read_text())
    digest = hash_weights(config, list(_iter_folder_tensors(folder)))
    try:
        cache.write_text(json.dumps({"sha256": digest, "stamp": stamp}))
    except OSError:  # read-only model volume: fine, just recompute next time
        logger.info("fingerprint cache not writable", extra={"path": str(cache)})
    return digest
