"""A saved memory applied frozen *beneath* the memory being trained (a group's on the org's).

Why: serving answers a group key with the org memory and the group memory stacked on the shared
base (``orgmem.serving.stack``: on every hooked module, the org's row ops, then the group's). A
group memory trained on the bare base learns a correction of the wrong function; stacked on a
strong org memory the org's answer wins. Training it with the org memory underneath makes the
trained function the served one.

The underlay is built in the memory's serving form (``orgmem.memory.build_row_memory``), so training
and serving compose the two memories with the same code. Its modules are frozen (eval mode, no grads); its
hooks are *prepended* on each module, so its ops run before any memory attached there, in
whatever order the two were attached. One underlay per base at a time, like ``attach``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from torch import nn

from orgmem.engine.rehearsal import RehearsalItem, _fill_reference
from orgmem.errors import ConflictError
from orgmem.memory import build_row_memory

_UNDERLAY_KEY = "memory_underlay"
_LAYER = re.compile(r"^model\.layers\.(\d+)(?:\.|$)")


class Underlay:
    """Saved memory bytes applied frozen to every row of every forward of ``base.model``."""

    def __init__(self, base, data: bytes, *, source: str = "underlay memory") -> None:
        from orgmem.store.base import sha256_hex

        self.base = base
        self.sha256 = sha256_hex(data)
        self.memory = build_row_memory(base, data, sha256=self.sha256, source=source)
        self.enabled = True
        self._hooks: list = []

    @property
    def lowest_layer(self) -> int:
        """The first decoder layer the underlay touches (0 when a path names no layer)."""
        layers = [_LAYER.match(path) for path in self.memory.paths]
        return min((int(m.group(1)) if m else 0 for m in layers), default=0)

    def attach(self) -> Underlay:
        current = self.base.extra.get(_UNDERLAY_KEY)
        if current is not None and current._hooks:
            raise ConflictError(f"base {self.base.name!r} already has an underlay memory: detach it first")
        model = self.base.model
        for path, ops in self.memory.ops.items():
            module = model.get_submodule(path)
            self._hooks.append(module.register_forward_hook(self._hook(ops), with_kwargs=True, prepend=True))
        self.base.extra[_UNDERLAY_KEY] = self
        return self

    def detach(self) -> None:
        """Remove the hooks (idempotent): the base computes its own function again."""
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()
        if self.base.extra.get(_UNDERLAY_KEY) is self:
            self.base.extra.pop(_UNDERLAY_KEY)

    @contextmanager
    def disabled(self) -> Iterator[None]:
        """Inside, the underlay does nothing (for references of the bare base)."""
        previous, self.enabled = self.enabled, False
        try:
            yield
        finally:
            self.enabled = previous

    def _hook(self, ops):
        def hook(module: nn.Module, args: tuple, kwargs: dict, output):
            if not self.enabled:
                return output
            x = args[0] if args else kwargs["hidden_states"]
            out = output[0] if isinstance(output, tuple) else output
            for op in ops:
                out = op(x, out)
            return (out, *output[1:]) if isinstance(output, tuple) else out

        return hook

    def __enter__(self) -> Underlay:
        return self.attach()

    def __exit__(self, *exc: object) -> None:
        self.detach()


@contextmanager
def underlay_on(base, data: bytes | None, *, source: str = "underlay memory") -> Iterator[Underlay | None]:
    """``data`` attached as an underlay inside the block (nothing when None)."""
    if data is None:
        yield None
        return
    with Underlay(base, data, source=source) as underlay:
        yield underlay


def underlay_reference(base, items: Sequence[RehearsalItem], first_layer: int, k: int,
                       max_len: int) -> list[RehearsalItem]:
    """Copies of the rehearsal ``items`` whose KL reference is the model as it runs now (the base
    with the underlay on): a group memory is held to what the org memory already answers, not to
    the bare base. Computed per consolidation (one batched forward), never cached with the base's.
    """
    copies = [dataclasses.replace(it, hidden=None, ref_idx=None, ref_logp=None, ref_rest=None)
              for it in items]
    _fill_reference(base, copies, first_layer, k, max_len)
    for copy, it in zip(copies, items, strict=True):
        copy.hidden = it.hidden  # below ``first_layer`` the underlay changes nothing: keep dtype/device
    return copies
