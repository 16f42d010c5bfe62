"""The ``titans`` kind's serving form, read-only: each token's query reads the saved memory weights."""

from __future__ import annotations

from torch import Tensor

from orgmem.errors import IntegrityError, OrgmemError
from orgmem.memory.config import MemoryConfig
from orgmem.memory.rows import RowForm, RowOp, frozen
from orgmem.memory.titans.config import TitansConfig
from orgmem.memory.titans.model import TitansMemory


def titans_rows(base, cfg: MemoryConfig, state: dict[str, Tensor]) -> RowForm:
    """Titans, read-only (no writes when serving).

    A query depends on its own token alone, so cached decoding reads what a full pass reads.
    """
    if not isinstance(cfg, TitansConfig):
        raise IntegrityError(f"a titans memory state came with a {cfg.kind!r} config")
    layers = cfg.resolve_layers(base.num_layers)
    memory = TitansMemory(base, cfg, layers).float()  # builds the memories; no hooks
    try:
        memory.load_memory_state_dict(state)
    except (RuntimeError, OrgmemError) as exc:
        raise IntegrityError(f"titans memory state does not fit its config: {exc}") from exc
    frozen(memory)
    ops: dict[str, RowOp] = {}
    for key in memory.memories:

        def op(x: Tensor, out: Tensor, key: str = key) -> Tensor:
            return out + memory.apply_memory(key, x.float()).to(out.dtype)

        ops[f"model.layers.{key}"] = op
    return ops, [memory]
