"""A saved memory's bytes as the components an exported folder carries (see ``kinds``)."""

from __future__ import annotations

from dataclasses import dataclass

from orgmem.export.kinds import ExportComponent, convert
from orgmem.memory.io import parse_saved_memory


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
    meta, configs, parts = parse_saved_memory(
        data, source, base_fingerprint, f"not on the base being exported ({base_fingerprint[:16]}…)")
    components = [convert(cfg, parts[cfg.kind], num_layers, source) for cfg in configs]
    return ExportLayer(audience, checkpoint_id, sha256, meta["kind"], components)
