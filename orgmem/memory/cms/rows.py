"""The ``cms`` kind's serving form: fused copies of its blocks as row operations."""

from __future__ import annotations

from typing import cast

from torch import Tensor, nn

from orgmem.errors import IntegrityError
from orgmem.memory.cms.config import CmsConfig
from orgmem.memory.cms.fused import FusedCmsBlock
from orgmem.memory.cms.layer import CmsBlock
from orgmem.memory.cms.model import CmsMemory
from orgmem.memory.config import MemoryConfig
from orgmem.memory.rows import RowForm, RowOp, frozen


def cms_rows(base, cfg: MemoryConfig, state: dict[str, Tensor]) -> RowForm:
    """CMS: the block beside each wrapped layer's MLP adds ``gate * (chain(x) - x)`` to its output."""
    if not isinstance(cfg, CmsConfig):
        raise IntegrityError(f"a cms memory state came with a {cfg.kind!r} config")
    layers = cfg.resolve_layers(base.num_layers)
    # Builds the blocks only (nothing is hooked into the base); fp32 even on a bf16 base.
    memory = CmsMemory(base, cfg, layers).float()
    try:
        memory.load_memory_state_dict(state)
    except RuntimeError as exc:
        raise IntegrityError(f"cms memory state does not fit its config: {exc}") from exc
    # Served through fused copies (fewer kernels per decoded token); the blocks themselves are dropped.
    fused = {str(i): FusedCmsBlock(cast(CmsBlock, memory.blocks[str(i)])) for i in layers}
    ops: dict[str, RowOp] = {f"model.layers.{i}.mlp": fused[str(i)].add_delta for i in layers}
    return ops, [frozen(nn.ModuleDict(fused))]
