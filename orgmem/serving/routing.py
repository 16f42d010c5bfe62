"""Per-row memory routing on the shared base: each row of a batch gets its own org's memory.

The router puts one forward hook on each base module some loaded memory touches. Before a
forward the engine declares which rows use which ``RowMemory`` (``with router.route(groups)``);
each hook then applies, for every group, that memory's ops to that group's rows only. Outside a
``route`` block the hooks do nothing, so the bare base function is untouched.

Only the engine thread runs forwards and installs hooks, so hooks never change mid-forward.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from orgmem.errors import IntegrityError
from orgmem.memory.rows import RowMemory, RowOp
from orgmem.models.layers import model_device


@dataclass(frozen=True)
class _Step:
    """What one hooked module does in the current forward: ops per row selection (None = all rows)."""

    rows: Tensor | None
    ops: list[RowOp]


class MemoryRouter:
    """Hooks on the base model that apply each row's memory."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._hooks: dict[str, object] = {}
        self._plan: dict[str, list[_Step]] | None = None
        self.device = model_device(model)

    def ensure_hooks(self, paths: Sequence[str]) -> None:
        """Hook every module in ``paths`` not hooked yet (call between forwards only)."""
        for path in paths:
            if path in self._hooks:
                continue
            try:
                module = self.model.get_submodule(path)
            except AttributeError:
                raise IntegrityError(f"memory targets module {path!r}, which the base model lacks") from None
            self._hooks[path] = module.register_forward_hook(self._hook(path), with_kwargs=True)

    def remove_hooks(self) -> None:
        for handle in self._hooks.values():
            handle.remove()  # type: ignore[attr-defined]
        self._hooks.clear()

    @contextmanager
    def route(self, memories: Sequence[RowMemory | None]) -> Iterator[None]:
        """Within the block, row ``i`` of each forward uses ``memories[i]`` (None = bare base)."""
        self._plan = plan_for(memories, self.device)
        try:
            yield
        finally:
            self._plan = None

    def _hook(self, path: str):
        def hook(module: nn.Module, args: tuple, kwargs: dict, output):
            plan = self._plan
            steps = plan.get(path) if plan else None
            if not steps:
                return output
            x = args[0] if args else kwargs["hidden_states"]
            out = output[0] if isinstance(output, tuple) else output
            out = _apply(steps, x, out)
            return (out, *output[1:]) if isinstance(output, tuple) else out

        return hook


def _apply(steps: list[_Step], x: Tensor, out: Tensor) -> Tensor:
    """Each step's ops on its rows of ``out`` (all rows when ``rows`` is None)."""
    for step in steps:
        if step.rows is None:
            for op in step.ops:
                out = op(x, out)
            continue
        rows_out = out.index_select(0, step.rows)
        rows_x = x.index_select(0, step.rows)
        for op in step.ops:
            rows_out = op(rows_x, rows_out)
        out = out.index_copy(0, step.rows, rows_out)
    return out


def plan_for(memories: Sequence[RowMemory | None], device: torch.device | None = None
             ) -> dict[str, list[_Step]]:
    """Group rows by memory and list, per module path, the ops for each group."""
    groups: dict[int, tuple[RowMemory, list[int]]] = {}
    for i, memory in enumerate(memories):
        if memory is not None:
            groups.setdefault(id(memory), (memory, []))[1].append(i)
    plan: dict[str, list[_Step]] = {}
    for memory, rows in groups.values():
        whole = len(rows) == len(memories)
        selection = None if whole else torch.tensor(rows, dtype=torch.long, device=device)
        for path, ops in memory.ops.items():
            plan.setdefault(path, []).append(_Step(selection, ops))
    return plan
