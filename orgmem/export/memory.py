"""A saved memory's bytes as the components an exported folder carries (see ``kinds``)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from safetensors import SafetensorError
from safetensors.torch import load as st_load

from orgmem.errors import IncompatibleBaseError, IntegrityError
from orgmem.export.kinds import ExportComponent, convert
from orgmem.memory import parse_spec, read_metadata


@dataclass(frozen=True)
class ExportLayer:
    """One memory of the exported stack: whose (audience), which checkpoint, its content hash."""

    audience: str
    checkpoint_id: str
    memory_sha256: str
    kind: str
    components: list[ExportComponent]

    def spec(self) -> dict:
        return {"audience": self.audience, "checkpoint": self.checkpoint_id,
                "memory_sha256": self.memory_sha256, "kind": self.kind,
                "components": [c.spec for c in self.components]}


def export_layer(data: bytes, *, audience: str, checkpoint_id: str, sha256: str, base_fingerprint: str,
                 num_layers: int) -> ExportLayer:
    """Parse a checkpoint's memory bytes (checksum verified by the caller) into exported components."""
    source = f"memory of checkpoint {checkpoint_id!r}"
    meta = read_metadata(data, source)
    if meta["base_fingerprint"] != base_fingerprint:
        raise IncompatibleBaseError(
            f"{source} was trained on base {meta.get('base_name')!r} (fingerprint "
            f"{meta['base_fingerprint'][:16]}…), not on the base being exported ({base_fingerprint[:16]}…)")
    try:
        state = st_load(data)
    except (SafetensorError, ValueError) as exc:
        raise IntegrityError(f"{source}: corrupt tensor data ({exc})") from exc
    configs = parse_spec(json.loads(meta["config"]))
    parts: dict[str, dict] = {c.kind: {} for c in configs}
    for key, value in state.items():
        kind, _, rest = key.partition(".")
        if kind not in parts:
            raise IntegrityError(f"{source}: tensor {key!r} belongs to no component of {sorted(parts)}")
        parts[kind][rest] = value
    components = [convert(cfg, parts[cfg.kind], num_layers, source) for cfg in configs]
    return ExportLayer(audience, checkpoint_id, sha256, meta["kind"], components)
