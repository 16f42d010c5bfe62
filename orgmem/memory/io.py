"""The one on-disk format of a memory: safetensors bytes with metadata.

Metadata: ``format`` ("orgmem-memory"), ``format_version``, ``kind`` ("cms+titans"), ``config``
(JSON of ``MemoryHandle.config``), ``base_fingerprint`` and ``base_name``. Only memory weights
are stored (a few MB), never the base. Loading onto another base is refused naming both
fingerprints; a corrupt blob is refused as an ``IntegrityError`` naming what was read.

The same bytes load in either form: attached for training (``load_memory``), or as row operations
for serving many orgs in one batch (``build_row_memory``, see ``orgmem.memory.rows``).
"""

from __future__ import annotations

import json
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import Tensor

from orgmem.errors import IncompatibleBaseError, IntegrityError, OrgmemError
from orgmem.memory.handle import MemoryHandle, attach
from orgmem.memory.registry import get_kind, parse_spec, servable_kinds
from orgmem.memory.rows import RowMemory, RowOp

FORMAT = "orgmem-memory"
FORMAT_VERSION = "1"


def _contiguous(state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def save_safetensors(tensors: dict[str, Tensor], metadata: dict[str, str]) -> bytes:
    """safetensors bytes with a canonical (sorted) header: same tensors + metadata → same bytes,
    so checksums of identical checkpoints match (the library orders the header by hash map)."""
    raw = st_save(_contiguous(tensors), metadata=metadata)
    n = int.from_bytes(raw[:8], "little")
    header = json.dumps(json.loads(raw[8:8 + n]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header + raw[8 + n:]


def save_memory(handle: MemoryHandle) -> bytes:
    """Serialise the handle's memory weights + config + base fingerprint."""
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": handle.kind,
        "config": json.dumps(handle.config, sort_keys=True),
        "base_fingerprint": handle.base.fingerprint,
        "base_name": str(handle.base.name),
    }
    return save_safetensors(handle.memory_state_dict(), meta)


def read_metadata(data: bytes, source: str = "memory blob") -> dict[str, str]:
    """The metadata header of a saved memory (cheap: does not build tensors)."""
    if len(data) < 8:
        raise IntegrityError(f"{source}: {len(data)} bytes is not a safetensors file")
    n = int.from_bytes(data[:8], "little")
    try:
        header = json.loads(data[8:8 + n])
    except (ValueError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"{source}: unreadable safetensors header ({exc})") from exc
    meta = header.get("__metadata__") or {}
    if meta.get("format") != FORMAT:
        raise IntegrityError(f"{source}: not an orgmem memory (format {meta.get('format')!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise IntegrityError(f"{source}: memory format version {meta.get('format_version')!r} "
                             f"is not supported (expected {FORMAT_VERSION})")
    return meta


def memory_config(data: bytes, source: str = "memory blob") -> dict[str, Any]:
    return json.loads(read_metadata(data, source)["config"])


def load_memory(base, data: bytes, *, source: str = "memory blob") -> MemoryHandle:
    """Attach the memory saved in ``data`` to ``base``; refuses another base's memory."""
    meta = read_metadata(data, source)
    if meta["base_fingerprint"] != base.fingerprint:
        raise IncompatibleBaseError(
            f"{source} was trained on base {meta.get('base_name')!r} (fingerprint "
            f"{meta['base_fingerprint'][:16]}…), not on {base.name!r} (fingerprint {base.fingerprint[:16]}…)"
        )
    try:
        state = st_load(data)
    except (SafetensorError, ValueError) as exc:
        raise IntegrityError(f"{source}: corrupt tensor data ({exc})") from exc
    handle = attach(base, json.loads(meta["config"]))
    try:
        handle.load_memory_state_dict(state)
    except BaseException:
        handle.detach()
        raise
    return handle


def load_memory_into(handle: MemoryHandle, data: bytes, *, source: str = "memory blob") -> None:
    """Swap another saved memory of the same config into an attached handle (serving hot-swap)."""
    meta = read_metadata(data, source)
    if meta["base_fingerprint"] != handle.base.fingerprint:
        raise IncompatibleBaseError(
            f"{source} was trained on base fingerprint {meta['base_fingerprint'][:16]}…, "
            f"the handle's base {handle.base.name!r} is {handle.base.fingerprint[:16]}…"
        )
    if json.loads(meta["config"]) != handle.config:
        raise IntegrityError(f"{source}: memory config differs from the attached {handle.kind!r} memory")
    handle.load_memory_state_dict(st_load(data))


def build_row_memory(base, data: bytes, *, sha256: str, source: str) -> RowMemory:
    """Parse saved memory bytes (checksum already verified by the caller) into a ``RowMemory``:
    each component through the serving form its kind registered."""
    meta, configs, parts = parse_saved_memory(data, source, base.fingerprint,
                                           f"this server runs {base.name!r} ({base.fingerprint[:16]}…)")
    ops: dict[str, list[RowOp]] = {}
    modules: list = []
    for cfg in configs:
        build = get_kind(cfg.kind).rows
        if build is None:
            raise OrgmemError(f"{source}: memory kind {cfg.kind!r} cannot be served yet "
                              f"(servable kinds: {servable_kinds()})")
        component_ops, component_modules = build(base, cfg, parts[cfg.kind])
        for path, op in component_ops.items():
            ops.setdefault(path, []).append(op)
        modules.extend(component_modules)
    nbytes = sum(t.numel() * t.element_size() for part in parts.values() for t in part.values())
    return RowMemory(sha256=sha256, kind=meta["kind"], ops=ops, modules=modules, nbytes=nbytes)


def parse_saved_memory(data: bytes, source: str, base_fingerprint: str, running: str
                       ) -> tuple[dict[str, Any], list, dict[str, dict[str, Tensor]]]:
    """Saved memory bytes (checksum verified by the caller) as (metadata, component configs, each
    component's tensors), refused by name when trained on another base (``running`` says which
    base is here) or corrupt. Serving and export read memories through this one parser."""
    meta = read_metadata(data, source)
    if meta["base_fingerprint"] != base_fingerprint:
        raise IncompatibleBaseError(
            f"{source} was trained on base {meta.get('base_name')!r} (fingerprint "
            f"{meta['base_fingerprint'][:16]}…); {running}")
    try:
        state = st_load(data)
    except (SafetensorError, ValueError) as exc:
        raise IntegrityError(f"{source}: corrupt tensor data ({exc})") from exc
    configs = parse_spec(json.loads(meta["config"]))
    return meta, configs, _split_state(state, [c.kind for c in configs], source)


def _split_state(state: dict[str, Tensor], kinds: list[str], source: str) -> dict[str, dict[str, Tensor]]:
    parts: dict[str, dict[str, Tensor]] = {k: {} for k in kinds}
    for key, value in state.items():
        kind, _, rest = key.partition(".")
        if kind not in parts:
            raise IntegrityError(f"{source}: tensor {key!r} belongs to no component of {kinds}")
        parts[kind][rest] = value
    return parts
