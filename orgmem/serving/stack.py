"""Several memories on one row: the org memory, then each group memory the key reaches.

A group memory is its own layer set, trained with the org memory frozen beneath it
(``orgmem.engine.underlay``), so serving it "on top of" the org memory means applying both
memories' row ops in turn on each hooked module, org first, as in training (CMS blocks and LoRA
deltas are residual: each adds its own term). The stack is one ``RowMemory``, so the router and
the engine need no change; stacks are kept by their members' content hashes, so every request
with the same stack shares one object and the router batches their rows together.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from orgmem.memory.rows import RowMemory, RowOp

STACK_SEPARATOR = "+"


def stack_memories(memories: Sequence[RowMemory]) -> RowMemory:
    """One memory whose ops on each module are ``memories``' ops in order (a single one is itself)."""
    if not memories:
        raise ValueError("stack_memories needs at least one memory")
    if len(memories) == 1:
        return memories[0]
    ops: dict[str, list[RowOp]] = {}
    for memory in memories:
        for path, path_ops in memory.ops.items():
            ops.setdefault(path, []).extend(path_ops)
    return RowMemory(
        sha256=STACK_SEPARATOR.join(m.sha256 for m in memories),
        kind=STACK_SEPARATOR.join(m.kind for m in memories),
        ops=ops,
        modules=[module for m in memories for module in m.modules],
        nbytes=sum(m.nbytes for m in memories),
    )


class StackCache:
    """The last ``capacity`` stacks, by their members' hashes (members stay cached in ``MemoryCache``)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._items: OrderedDict[tuple[str, ...], RowMemory] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, memories: Sequence[RowMemory]) -> RowMemory:
        if len(memories) == 1:
            return memories[0]
        key = tuple(m.sha256 for m in memories)
        with self._lock:
            stacked = self._items.get(key)
            if stacked is None:
                stacked = self._items[key] = stack_memories(memories)
                while len(self._items) > self.capacity:
                    self._items.popitem(last=False)
            self._items.move_to_end(key)
            return stacked
