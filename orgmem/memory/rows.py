"""A memory's serving form: *row operations*, what to add to which base module's output, for some rows.

Serving decodes many orgs in one forward pass over the shared base, so a memory cannot be
attached the way training attaches it (hooks that act on every row). Instead each loaded memory
becomes a ``RowMemory``: ``ops[module_path]`` are functions ``(x, out) -> out`` that the router
(``orgmem.serving.routing``) applies to exactly the rows of the requests using that memory. Each
memory owns its own modules, built from the saved bytes and never mutated afterwards, so requests
of different orgs share nothing mutable.

A kind gives its row form through the ``rows`` builder it registers with ``register_memory_kind``
(``orgmem.memory.<kind>.rows``); ``build_row_memory`` (``orgmem.memory.io``) joins the components.
The built-in forms compute exactly what ``attach`` computes in eval mode (a test compares logits).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import Tensor, nn

from orgmem.memory.config import MemoryConfig

RowOp = Callable[[Tensor, Tensor], Tensor]
"""``op(x, out) -> out'``: ``x`` the module's input rows, ``out`` its output rows."""

RowForm = tuple[dict[str, RowOp], list[nn.Module]]
"""One component's ops by module path, and the modules that hold their weights."""

RowBuilder = Callable[[object, MemoryConfig, dict[str, Tensor]], RowForm]
"""``build(base, config, state) -> RowForm``: a kind's saved weights as row operations."""


@dataclass
class RowMemory:
    """One loaded memory (content ``sha256``): module path -> ops, and the modules that hold its weights."""

    sha256: str
    kind: str
    ops: dict[str, list[RowOp]]
    modules: list[nn.Module] = field(default_factory=list, repr=False)
    nbytes: int = 0

    @property
    def paths(self) -> list[str]:
        return sorted(self.ops)


def frozen(module: nn.Module) -> nn.Module:
    """``module`` in eval mode without grads: a served memory never changes."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module
