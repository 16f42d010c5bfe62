"""The KV cache of the decode batch: rows of different lengths (and orgs) in one set of buffers.

Why not ``DynamicCache``: it concatenates every step (an O(length) copy of every layer, per step,
per row) and has no way to add a request to a running batch. Here each layer holds preallocated
buffers ``(rows, kv_heads, capacity, head_dim)`` that grow by doubling; rows are right-aligned
(left-padded) so every row writes its next token in the same column, and ``mask`` marks the real
positions. Requests join by copying their prefill cache in (``add_rows``) and leave by row
selection (``keep_rows``); ``compact`` drops columns that are padding for every remaining row.

Reading order: ``GrowableLayer`` (one layer's buffers, the HF cache-layer protocol) →
``BatchCache`` (all layers + the padding mask, as an HF ``Cache``).
"""

from __future__ import annotations

import torch
from torch import Tensor
from transformers.cache_utils import Cache, DynamicLayer


class GrowableLayer(DynamicLayer):
    """One layer's K/V for the batch; ``update`` writes in place instead of concatenating."""

    # set by ``lazy_initialization`` (or ``BatchCache.add_rows``) before any read: never None when used
    keys: Tensor
    values: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.length = 0

    def lazy_initialization(self, key_states: Tensor, value_states: Tensor) -> None:
        self.device = key_states.device
        self.keys = key_states.new_zeros((key_states.shape[0], key_states.shape[1], 0, key_states.shape[3]))
        self.values = value_states.new_zeros((*value_states.shape[:2], 0, value_states.shape[3]))
        self.is_initialized = True

    def _ensure_capacity(self, needed: int) -> None:
        capacity = self.keys.shape[2]
        if needed <= capacity:
            return
        new_capacity = max(needed, 2 * capacity, 16)
        self.keys = _resize_columns(self.keys, self.length, new_capacity)
        self.values = _resize_columns(self.values, self.length, new_capacity)

    def update(self, key_states: Tensor, value_states: Tensor, *args, **kwargs) -> tuple[Tensor, Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        n = key_states.shape[2]
        self._ensure_capacity(self.length + n)
        self.keys[:, :, self.length:self.length + n] = key_states
        self.values[:, :, self.length:self.length + n] = value_states
        self.length += n
        return self.keys[:, :, :self.length], self.values[:, :, :self.length]

    def get_seq_length(self) -> int:
        return self.length

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.length + query_length, 0

    def reset(self) -> None:
        super().reset()
        self.length = 0

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError("the serving batch cache is never cropped")

    def batch_select_indices(self, indices: Tensor) -> None:
        if self.is_initialized:
            self.keys = self.keys[indices]
            self.values = self.values[indices]

    def batch_repeat_interleave(self, repeats: int) -> None:
        raise NotImplementedError("the serving batch cache does not expand rows")

    def view(self) -> tuple[Tensor, Tensor]:
        return self.keys[:, :, :self.length], self.values[:, :, :self.length]


def filled_kv(layer: object) -> tuple[Tensor, Tensor]:
    """The keys and values a prefill wrote into one layer of a ``DynamicCache``."""
    keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
    if keys is None or values is None:
        raise RuntimeError("a prefill left a cache layer without keys and values")
    return keys, values


def _resize_columns(buffer: Tensor, used: int, capacity: int) -> Tensor:
    """A buffer with ``capacity`` columns holding the first ``used`` columns of ``buffer``."""
    out = buffer.new_zeros((buffer.shape[0], buffer.shape[1], capacity, buffer.shape[3]))
    out[:, :, :used] = buffer[:, :, :used]
    return out


def _right_align(t: Tensor, width: int) -> Tensor:
    """Left-pad ``t`` (rows, heads, cols, dim) with zeros to ``width`` columns."""
    pad = width - t.shape[2]
    if pad == 0:
        return t
    return torch.cat([t.new_zeros((*t.shape[:2], pad, t.shape[3])), t], dim=2)


def _left_pad_mask(mask: Tensor, width: int) -> Tensor:
    pad = width - mask.shape[1]
    return mask if pad == 0 else torch.cat([mask.new_zeros((mask.shape[0], pad)), mask], dim=1)


class BatchCache(Cache):
    """All layers of the decode batch plus ``mask`` (rows, length): 1 where a real token is."""

    layers: list[GrowableLayer]  # type: ignore[assignment]  # the base class types its layers loosely

    def __init__(self, num_layers: int, device: torch.device | None = None) -> None:
        super().__init__(layers=[GrowableLayer() for _ in range(num_layers)])
        self.mask = torch.zeros((0, 0), dtype=torch.long, device=device)

    @property
    def rows(self) -> int:
        return int(self.mask.shape[0])

    @property
    def length(self) -> int:
        return int(self.mask.shape[1])

    def add_rows(self, kv: list[tuple[Tensor, Tensor]], mask: Tensor) -> None:
        """Append rows given per layer as (keys, values) with ``mask`` (new_rows, cols), right-aligned."""
        if len(kv) != len(self.layers):
            raise ValueError(f"{len(kv)} cache layers given for a model with {len(self.layers)}")
        width = max(self.length, int(mask.shape[1]))
        self._widen(width)
        self.mask = torch.cat([self.mask, _left_pad_mask(mask.to(self.mask), width)], dim=0)
        for layer, (keys, values) in zip(self.layers, kv, strict=True):
            keys, values = _right_align(keys, width), _right_align(values, width)
            if layer.is_initialized:
                old_k, old_v = layer.view()
                keys, values = torch.cat([old_k, keys], dim=0), torch.cat([old_v, values], dim=0)
            else:
                layer.device, layer.is_initialized = keys.device, True
            layer.keys, layer.values, layer.length = keys, values, width

    def _widen(self, width: int) -> None:
        """Left-pad existing rows so that they have ``width`` columns."""
        if width == self.length:
            return
        self.mask = _left_pad_mask(self.mask, width)
        for layer in self.layers:
            if layer.is_initialized:
                keys, values = layer.view()
                layer.keys, layer.values = _right_align(keys, width), _right_align(values, width)
            layer.length = width

    def extend_mask(self, n: int = 1) -> Tensor:
        """Mark ``n`` new columns real for every row (called before a decode forward); returns the mask."""
        self.mask = torch.cat([self.mask, self.mask.new_ones((self.rows, n))], dim=1)
        return self.mask

    def keep_rows(self, keep: list[int]) -> None:
        """Drop every row not in ``keep`` (finished or cancelled requests)."""
        index = torch.tensor(keep, dtype=torch.long, device=self.mask.device)
        self.mask = self.mask[index]
        for layer in self.layers:
            layer.batch_select_indices(index)
        if not keep:
            self.mask = self.mask[:, :0]
            for layer in self.layers:
                layer.reset()
        self.compact()

    def compact(self) -> None:
        """Remove leading columns that are padding in every row (after long rows left)."""
        if self.rows == 0 or self.length == 0:
            return
        used = self.mask.any(dim=0).nonzero()
        first = int(used[0]) if used.numel() else self.length
        if first == 0:
            return
        self.mask = self.mask[:, first:]
        for layer in self.layers:
            if layer.is_initialized:
                keys, values = layer.view()
                layer.keys, layer.values = keys[:, :, first:].contiguous(), values[:, :, first:].contiguous()
                layer.length = keys.shape[2] - first

    def positions(self) -> Tensor:
        """Position id of each row's next token = its number of real tokens so far."""
        return self.mask.sum(dim=1, keepdim=True)

    def nbytes(self) -> int:
        return sum(layer.keys.numel() * layer.keys.element_size() * 2
                   for layer in self.layers if layer.is_initialized)
