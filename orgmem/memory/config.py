"""``MemoryConfig``: the base dataclass every memory kind's config extends.

Configs are plain dataclasses so they serialise to JSON (saved in every checkpoint's metadata and
manifest) and load back exactly; unknown or mistyped fields are refused with their name.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from orgmem.errors import OrgmemError


@dataclass
class MemoryConfig:
    """Fields shared by all kinds. ``kind`` is set by each subclass (the registry name)."""

    kind: ClassVar[str] = ""

    layers: list[int] | None = field(
        default=None,
        metadata={"help": "Decoder layers to attach to; None = the last quarter of the base's layers."},
    )

    def resolve_layers(self, num_layers: int) -> list[int]:
        """Concrete sorted layer indices; refuses indices outside ``[0, num_layers)``."""
        if self.layers is None:
            first = num_layers - max(1, math.ceil(num_layers / 4))
            return list(range(first, num_layers))
        bad = [i for i in self.layers if not 0 <= int(i) < num_layers]
        if bad or not self.layers:
            raise OrgmemError(
                f"{self.kind} memory: layers {self.layers} invalid for a base with {num_layers} layers"
            )
        return sorted({int(i) for i in self.layers})

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict including ``kind``."""
        return {"kind": self.kind, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MemoryConfig:
        """Inverse of ``to_dict``; names any unknown field or a kind mismatch."""
        data = dict(data)
        kind = data.pop("kind", cls.kind)
        if kind != cls.kind:
            raise OrgmemError(f"config of kind {kind!r} given to {cls.__name__} (kind {cls.kind!r})")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise OrgmemError(f"{cls.kind} memory config: unknown field(s) {unknown}; known: {sorted(names)}")
        return cls(**data)
