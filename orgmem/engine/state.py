"""``train_state.safetensors``: what the next consolidation needs to continue exactly.

Tensors: the periodic optimizer's AdamW moments, accumulated level gradients and counters
(``opt.*``) and the memory kinds' own training state (``mem.*``, e.g. Titans momentum).
Metadata: format/version, memory kind + config, base fingerprint, the sampler's RNG state and
the number of consolidations so far. Saved apart from ``memory.safetensors`` because serving
never needs it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from safetensors import SafetensorError
from safetensors.torch import load as st_load
from torch import Tensor

from orgmem.errors import IncompatibleBaseError, IntegrityError
from orgmem.memory.io import save_safetensors

FORMAT = "orgmem-train-state"
FORMAT_VERSION = "1"


@dataclass
class TrainState:
    optimizer: dict[str, Tensor]
    memory: dict[str, Tensor]
    rng_state: list
    consolidations: int
    memory_config: dict
    base_fingerprint: str


def dump_train_state(state: TrainState) -> bytes:
    memory = {f"mem.{k}": v.detach().cpu().contiguous() for k, v in state.memory.items()}
    tensors = {**state.optimizer, **memory}
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "memory_config": json.dumps(state.memory_config, sort_keys=True),
        "base_fingerprint": state.base_fingerprint,
        "rng_state": json.dumps(state.rng_state),
        "consolidations": str(state.consolidations),
    }
    return save_safetensors(tensors, meta)


def _rng_state(raw: list) -> tuple:
    version, internal, gauss = raw
    return (version, tuple(internal), gauss)


def parse_train_state(data: bytes, *, base_fingerprint: str, memory_config: dict,
                      source: str = "train state") -> TrainState:
    """Inverse of ``dump_train_state``; refuses another base's or another memory config's state."""
    try:
        tensors = st_load(data)
        n = int.from_bytes(data[:8], "little")
        meta = json.loads(data[8:8 + n]).get("__metadata__") or {}
    except (SafetensorError, ValueError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"{source}: not a readable safetensors file ({exc})") from exc
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise IntegrityError(f"{source}: not an orgmem train state v{FORMAT_VERSION} "
                             f"(format {meta.get('format')!r} {meta.get('format_version')!r})")
    if meta["base_fingerprint"] != base_fingerprint:
        raise IncompatibleBaseError(f"{source} belongs to base {meta['base_fingerprint'][:16]}…, "
                                    f"not {base_fingerprint[:16]}…")
    if json.loads(meta["memory_config"]) != memory_config:
        raise IntegrityError(f"{source} was made for memory config {meta['memory_config']}, "
                             f"not {json.dumps(memory_config, sort_keys=True)}")
    return TrainState(
        optimizer={k: v for k, v in tensors.items() if k.startswith("opt.")},
        memory={k[4:]: v for k, v in tensors.items() if k.startswith("mem.")},
        rng_state=json.loads(meta["rng_state"]),
        consolidations=int(meta["consolidations"]),
        memory_config=json.loads(meta["memory_config"]),
        base_fingerprint=meta["base_fingerprint"],
    )


def rng_tuple(state: TrainState) -> tuple:
    return _rng_state(state.rng_state)
