"""Memory layers attached to a frozen base model (kinds: ``cms``, ``lora``, ``titans``).

Public API (stable; used by engine, eval, serving, titans):

- ``attach(base, spec="cms") -> MemoryHandle`` — ``spec``: ``"cms"``, ``"lora"``, ``"cms+titans"``,
  a ``MemoryConfig`` (e.g. ``CmsConfig(widths=[64, 64], periods=[1, 0], lrs=[3e-3, 3e-3])``), a list
  of configs, or ``handle.config``. At attach the model computes exactly the base function.
- ``MemoryHandle``: ``model`` (the HF model, memory in its forward), ``__call__``/``generate``,
  ``kind``, ``config`` (JSON dict), ``param_groups() -> list[ParamGroup(name, params, lr, period,
  weight_decay)]`` (period in optimizer steps; 0 = once per consolidation), ``aux_losses(mask)``,
  ``memory_state_dict()`` / ``load_memory_state_dict()``, ``train_state_dict()`` /
  ``load_train_state_dict()``, ``disabled()`` (context: exact base function), ``detach()``
  (also a context manager: ``with attach(base, "cms") as h: ...``). One handle per base at a time.
- ``save_memory(handle) -> bytes`` / ``load_memory(base, data) -> MemoryHandle`` — safetensors with
  metadata {format, format_version, kind, config, base_fingerprint, base_name}; a foreign base raises
  ``IncompatibleBaseError``. ``load_memory_into(handle, data)`` hot-swaps weights of the same config.
- ``build_row_memory(base, data, sha256=, source=) -> RowMemory`` — the same bytes as per-row
  operations on a shared base (the serving form: ``orgmem.memory.rows``; each kind's in
  ``orgmem.memory.<kind>.rows``).
- Extending: subclass ``MemoryConfig`` (with ``kind: ClassVar[str]``) and ``MemoryKind``, then
  ``register_memory_kind(name, config_cls, kind_cls, rows=build)`` in your package's ``__init__``
  (``rows``: the serving form, optional); a package
  ``orgmem.memory.<name>`` is imported on first use of ``<name>``.
"""

from orgmem.memory.cms import CmsConfig, CmsMemory
from orgmem.memory.config import MemoryConfig
from orgmem.memory.handle import MemoryHandle, attach, attached_handle
from orgmem.memory.interface import PERIOD_CONSOLIDATION, MemoryKind, ParamGroup, masked_mean
from orgmem.memory.io import (
    build_row_memory,
    load_memory,
    load_memory_into,
    memory_config,
    read_metadata,
    save_memory,
)
from orgmem.memory.lora import LoraMemory, LoraMemoryConfig
from orgmem.memory.registry import (
    get_kind,
    parse_spec,
    register_memory_kind,
    registered_kinds,
    servable_kinds,
)
from orgmem.memory.rows import RowMemory, RowOp

__all__ = [
    "PERIOD_CONSOLIDATION",
    "CmsConfig",
    "CmsMemory",
    "LoraMemory",
    "LoraMemoryConfig",
    "MemoryConfig",
    "MemoryHandle",
    "MemoryKind",
    "ParamGroup",
    "RowMemory",
    "RowOp",
    "attach",
    "build_row_memory",
    "attached_handle",
    "get_kind",
    "load_memory",
    "load_memory_into",
    "masked_mean",
    "memory_config",
    "parse_spec",
    "read_metadata",
    "register_memory_kind",
    "registered_kinds",
    "save_memory",
    "servable_kinds",
]
