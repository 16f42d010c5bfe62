"""Pack items into rows and compute the frozen lower layers' output for each item once.

A row holds items back to back; ``segments`` tells them apart and ``positions`` restart at 0 per
item, so together with ``layers.packed_mask`` each item computes exactly what it would alone —
with no compute wasted on padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from orgmem.engine.items import Item
from orgmem.engine.layers import run_packed
from orgmem.models.layers import embed

PAD_SEGMENT = -1


@dataclass
class Packed:
    """Rows of packed items: positions/segments (rows, L); ``where[i]`` = (row, offset) of item i."""

    positions: Tensor
    segments: Tensor
    where: list[tuple[int, int]]
    items: list[Item]

    @property
    def real(self) -> Tensor:
        """(rows, L) bool: True on item tokens, False on padding."""
        return self.segments >= 0


def pack(items: Sequence[Item], max_len: int) -> Packed:
    """First-fit in the given order (deterministic); rows are right-padded to the longest."""
    rows: list[list[int]] = []
    lengths: list[int] = []
    where: list[tuple[int, int]] = []
    for i, item in enumerate(items):
        n = len(item)
        slot = next((r for r, used in enumerate(lengths) if used + n <= max_len), None)
        if slot is None:
            rows.append([])
            lengths.append(0)
            slot = len(rows) - 1
        where.append((slot, lengths[slot]))
        rows[slot].append(i)
        lengths[slot] += n
    width = max(lengths) if lengths else 0
    positions = torch.zeros(len(rows), width, dtype=torch.long)
    segments = torch.full((len(rows), width), PAD_SEGMENT, dtype=torch.long)
    for i, (r, off) in enumerate(where):
        n = len(items[i])
        positions[r, off:off + n] = torch.arange(n)
        segments[r, off:off + n] = i
    pad = segments == PAD_SEGMENT  # each pad its own (negative) segment: no attention row is empty
    segments[pad] = -1 - torch.arange(int(pad.sum()))
    return Packed(positions, segments, where, list(items))


def row_tensor(packed: Packed, per_item: Sequence[Tensor], fill: float | int = 0) -> Tensor:
    """Scatter per-item tensors (n_i, ...) into a (rows, L, ...) tensor."""
    rows, width = packed.segments.shape
    first = per_item[0]
    out = torch.full((rows, width, *first.shape[1:]), fill, dtype=first.dtype, device=first.device)
    for t, (r, off) in zip(per_item, packed.where, strict=True):
        out[r, off:off + t.shape[0]] = t
    return out


@torch.no_grad()
def compute_lower(model, items: Sequence[Item], first_layer: int, max_len: int, device: torch.device,
                  rows_per_call: int = 8) -> None:
    """Fill ``item.hidden`` with the input of decoder layer ``first_layer`` (frozen base only)."""
    todo = [it for it in items if it.hidden is None]
    for start in range(0, len(todo), rows_per_call * 4):
        group = todo[start:start + rows_per_call * 4]
        packed = pack(group, max_len)
        ids = row_tensor(packed, [it.ids for it in group]).to(device)
        hidden = embed(model, ids)
        hidden = run_packed(model, hidden, packed.positions.to(device), packed.segments.to(device),
                            0, first_layer)
        for it, (r, off) in zip(group, packed.where, strict=True):
            it.hidden = hidden[r, off:off + len(it)].detach().clone()
