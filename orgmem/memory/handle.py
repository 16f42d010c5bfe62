"""``attach(base, spec) -> MemoryHandle``: memory components bound to a frozen base.

The handle is what the engine trains, eval measures and serving answers with. ``handle.model``
is the base's own HF model object (same call signature, ``generate`` works) whose forward now
includes the memory; ``handle.detach()`` restores the base exactly. One handle per base at a
time: a second ``attach`` on the same base is refused, so two orgs never mix on a shared base
(serving swaps orgs with ``load_memory_state_dict`` or detach + attach).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch import Tensor

from orgmem.errors import ConflictError, OrgmemError
from orgmem.memory.interface import MemoryKind, ParamGroup
from orgmem.memory.registry import Spec, get_kind, parse_spec

logger = logging.getLogger(__name__)

_ATTACHED_KEY = "attached_memory"


class MemoryHandle:
    """Attached memory components (``cms``, ``cms+titans``, ``lora``...) on one base."""

    def __init__(self, base, components: list[MemoryKind]) -> None:
        self.base = base
        self.components = components
        self.attached = True

    # -- using the model -------------------------------------------------------------------------
    @property
    def model(self):
        """The HF causal LM with memory in its forward (call it like the base model)."""
        return self.base.model

    def __call__(self, *args: Any, **kwargs: Any):
        return self.model(*args, **kwargs)

    def generate(self, *args: Any, **kwargs: Any):
        return self.model.generate(*args, **kwargs)

    @property
    def kind(self) -> str:
        return "+".join(c.config.kind for c in self.components)

    @property
    def config(self) -> dict[str, Any]:
        """JSON-serialisable; ``attach(base, handle.config)`` rebuilds the same memory."""
        return {"kind": self.kind, "components": [c.config.to_dict() for c in self.components]}

    @contextmanager
    def disabled(self) -> Iterator[None]:
        """Inside, the model computes the exact base function (KL references, comparisons)."""
        previous = [c.enabled for c in self.components]
        for c in self.components:
            c.set_enabled(False)
        try:
            yield
        finally:
            for c, was in zip(self.components, previous, strict=True):
                c.set_enabled(was)

    # -- training --------------------------------------------------------------------------------
    def param_groups(self) -> list[ParamGroup]:
        """All components' groups, names prefixed by kind (``cms.level1``, ``lora.adapters``)."""
        groups = []
        for c in self.components:
            for g in c.param_groups():
                groups.append(ParamGroup(f"{c.config.kind}.{g.name}", g.params, g.lr, g.period,
                                         g.weight_decay))
        return groups

    def num_trainable(self) -> int:
        return sum(c.num_trainable() for c in self.components)

    def set_segments(self, segments: Tensor | None) -> None:
        """Tell every component which items share a packed row (see ``MemoryKind.set_segments``)."""
        for c in self.components:
            c.set_segments(segments)

    def aux_losses(self, token_mask: Tensor | None = None) -> dict[str, Tensor]:
        """Weighted auxiliary terms from the last forward, keyed ``<kind>.<name>``."""
        out: dict[str, Tensor] = {}
        for c in self.components:
            out.update({f"{c.config.kind}.{k}": v for k, v in c.aux_losses(token_mask).items()})
        return out

    def train(self, mode: bool = True) -> MemoryHandle:
        """Train/eval mode of the memory modules (the base always stays in eval mode)."""
        for c in self.components:
            c.train(mode)
        return self

    def eval(self) -> MemoryHandle:
        return self.train(False)

    # -- state -----------------------------------------------------------------------------------
    def memory_state_dict(self) -> dict[str, Tensor]:
        """Memory weights only, keys ``<kind>.<name>``; never a base weight."""
        return {f"{c.config.kind}.{k}": v for c in self.components for k, v in c.memory_state_dict().items()}

    def load_memory_state_dict(self, state: dict[str, Tensor]) -> None:
        """Strict: missing or unexpected keys are refused by name."""
        for c, part in self._split(state, "memory state").items():
            c.load_memory_state_dict(part)

    def train_state_dict(self) -> dict[str, Tensor]:
        return {f"{c.config.kind}.{k}": v for c in self.components for k, v in c.train_state_dict().items()}

    def load_train_state_dict(self, state: dict[str, Tensor]) -> None:
        for c, part in self._split(state, "train state", allow_missing=True).items():
            c.load_train_state_dict(part)

    def _split(self, state: dict[str, Tensor], what: str, allow_missing: bool = False
               ) -> dict[MemoryKind, dict[str, Tensor]]:
        by_kind = {c.config.kind: c for c in self.components}
        parts: dict[MemoryKind, dict[str, Tensor]] = {c: {} for c in self.components}
        for key, value in state.items():
            kind, _, rest = key.partition(".")
            if kind not in by_kind:
                raise OrgmemError(f"{what} key {key!r} belongs to no component of memory {self.kind!r}")
            parts[by_kind[kind]][rest] = value
        if not allow_missing:
            expected = set(self.memory_state_dict())
            missing = sorted(expected - set(state))
            if missing:
                raise OrgmemError(f"{what} for memory {self.kind!r} lacks keys {missing[:5]}")
        return parts

    # -- lifecycle -------------------------------------------------------------------------------
    def detach(self) -> None:
        """Remove the memory from the base (idempotent)."""
        if not self.attached:
            return
        for c in reversed(self.components):
            c.detach()
        self.base.extra.pop(_ATTACHED_KEY, None)
        self.attached = False

    def __enter__(self) -> MemoryHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()


def attach(base, spec: Spec = "cms") -> MemoryHandle:
    """Build the memory described by ``spec`` and attach it to ``base`` (a ``BaseModel``).

    Right after attaching, the model computes exactly the base function (zero-initialised outputs).
    """
    current = base.extra.get(_ATTACHED_KEY)
    if current is not None and current.attached:
        raise ConflictError(
            f"base {base.name!r} already has memory {current.kind!r} attached: detach it first"
        )
    components: list[MemoryKind] = []
    try:
        for cfg in parse_spec(spec):
            layers = cfg.resolve_layers(base.num_layers)
            component = get_kind(cfg.kind).kind_cls(base, cfg, layers)
            component.attach()
            components.append(component)
    except BaseException:
        for c in reversed(components):
            c.detach()
        raise
    handle = MemoryHandle(base, components)
    base.extra[_ATTACHED_KEY] = handle
    logger.info("memory attached", extra={"base": base.name, "kind": handle.kind,
                                          "trainable": handle.num_trainable()})
    return handle


def attached_handle(base) -> MemoryHandle | None:
    """The handle currently attached to ``base``, if any."""
    handle = base.extra.get(_ATTACHED_KEY)
    return handle if handle is not None and handle.attached else None
