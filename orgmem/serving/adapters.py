"""A saved memory as *row operations*: what to add to which base module's output, for some rows.

Serving decodes many orgs in one forward pass over the shared base, so a memory cannot be
attached the way training attaches it (hooks that act on every row). Instead each loaded memory
becomes a ``RowMemory``: ``ops[module_path]`` are functions ``(x, out) -> out`` that the router
(``routing.py``) applies to exactly the rows of the requests using that memory. Each memory
owns its own modules, built from the saved bytes and never mutated afterwards, so requests of
different orgs share nothing mutable.

Kinds join through ``register_row_adapter(kind, build)``; ``cms``, ``lora`` and ``titans`` (read
only) are built in and compute exactly what ``orgmem.memory.attach`` computes in eval mode (a
test compares logits).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from torch import Tensor, nn

from orgmem.errors import IncompatibleBaseError, IntegrityError, OrgmemError
from orgmem.memory import CmsMemory, MemoryConfig, get_kind, parse_spec, read_metadata
from orgmem.serving.cms_rows import FusedCmsBlock

RowOp = Callable[[Tensor, Tensor], Tensor]
"""``op(x, out) -> out'``: ``x`` the module's input rows, ``out`` its output rows."""

AdapterResult = tuple[dict[str, RowOp], list[nn.Module]]
AdapterBuilder = Callable[[object, MemoryConfig, dict[str, Tensor]], AdapterResult]


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


_ADAPTERS: dict[str, AdapterBuilder] = {}


def register_row_adapter(kind: str, build: AdapterBuilder) -> None:
    """Teach serving a memory kind; a second registration of the same kind is refused."""
    if kind in _ADAPTERS:
        raise ValueError(f"row adapter for memory kind {kind!r} is already registered")
    _ADAPTERS[kind] = build


def servable_kinds() -> list[str]:
    return sorted(_ADAPTERS)


def build_row_memory(base, data: bytes, *, sha256: str, source: str) -> RowMemory:
    """Parse saved memory bytes (checksum already verified by the caller) into a ``RowMemory``."""
    meta = read_metadata(data, source)
    if meta["base_fingerprint"] != base.fingerprint:
        raise IncompatibleBaseError(
            f"{source} was trained on base {meta.get('base_name')!r} (fingerprint "
            f"{meta['base_fingerprint'][:16]}…); this server runs {base.name!r} ({base.fingerprint[:16]}…)")
    try:
        state = st_load(data)
    except (SafetensorError, ValueError) as exc:
        raise IntegrityError(f"{source}: corrupt tensor data ({exc})") from exc
    configs = parse_spec(json.loads(meta["config"]))
    parts = _split_state(state, [c.kind for c in configs], source)
    ops: dict[str, list[RowOp]] = {}
    modules: list[nn.Module] = []
    for cfg in configs:
        build = _ADAPTERS.get(cfg.kind)
        if build is None:
            raise OrgmemError(f"{source}: memory kind {cfg.kind!r} cannot be served yet "
                              f"(servable kinds: {servable_kinds()})")
        component_ops, component_modules = build(base, cfg, parts[cfg.kind])
        for path, op in component_ops.items():
            ops.setdefault(path, []).append(op)
        modules.extend(component_modules)
    nbytes = sum(t.numel() * t.element_size() for t in state.values())
    return RowMemory(sha256=sha256, kind=meta["kind"], ops=ops, modules=modules, nbytes=nbytes)


def _split_state(state: dict[str, Tensor], kinds: list[str], source: str) -> dict[str, dict[str, Tensor]]:
    parts: dict[str, dict[str, Tensor]] = {k: {} for k in kinds}
    for key, value in state.items():
        kind, _, rest = key.partition(".")
        if kind not in parts:
            raise IntegrityError(f"{source}: tensor {key!r} belongs to no component of {kinds}")
        parts[kind][rest] = value
    return parts


def _frozen(module: nn.Module) -> nn.Module:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def _cms_adapter(base, cfg: MemoryConfig, state: dict[str, Tensor]) -> AdapterResult:
    """CMS: the block beside each wrapped layer's MLP adds ``gate * (chain(x) - x)`` to its output."""
    layers = cfg.resolve_layers(base.num_layers)
    # Builds the blocks only (nothing is hooked into the base); fp32 even on a bf16 base.
    memory = CmsMemory(base, cfg, layers).float()
    try:
        memory.load_memory_state_dict(state)
    except RuntimeError as exc:
        raise IntegrityError(f"cms memory state does not fit its config: {exc}") from exc
    # Served through fused copies (fewer kernels per decoded token); the blocks themselves are dropped.
    holder = nn.ModuleDict({str(i): FusedCmsBlock(memory.blocks[str(i)]) for i in layers})
    ops: dict[str, RowOp] = {f"model.layers.{i}.mlp": holder[str(i)].add_delta for i in layers}
    return ops, [_frozen(holder)]


def _lora_adapter(base, cfg: MemoryConfig, state: dict[str, Tensor]) -> AdapterResult:
    """LoRA: ``out + B(A(x)) * alpha / r`` on each adapted linear (what peft computes, dropout off)."""
    scale = float(cfg.alpha) / float(cfg.r)  # type: ignore[attr-defined]
    device = next(base.model.parameters()).device
    pairs: dict[str, dict[str, Tensor]] = {}
    for key, value in state.items():
        path, sep, rest = key.partition(".lora_")
        if not sep or rest not in ("A.weight", "B.weight"):
            raise IntegrityError(f"lora memory: unexpected tensor {key!r}")
        pairs.setdefault(path, {})[rest[0]] = value.to(device)
    holder = nn.Module()
    ops: dict[str, RowOp] = {}
    for n, (path, ab) in enumerate(sorted(pairs.items())):
        if set(ab) != {"A", "B"}:
            raise IntegrityError(f"lora memory: {path!r} lacks lora_A or lora_B")
        try:
            base.model.get_submodule(path)
        except AttributeError:
            raise IntegrityError(f"lora memory targets {path!r}, which base {base.name!r} lacks") from None
        a, b = nn.Parameter(ab["A"], requires_grad=False), nn.Parameter(ab["B"], requires_grad=False)
        holder.register_parameter(f"a{n}", a)
        holder.register_parameter(f"b{n}", b)

        def op(x: Tensor, out: Tensor, a: Tensor = a, b: Tensor = b) -> Tensor:
            return out + (torch.nn.functional.linear(torch.nn.functional.linear(x.to(a.dtype), a), b)
                          * scale).to(out.dtype)

        ops[path] = op
    return ops, [holder]


def _titans_adapter(base, cfg: MemoryConfig, state: dict[str, Tensor]) -> AdapterResult:
    """Titans, read-only: each token's query reads the saved memory weights (no writes when serving).

    A query depends on its own token alone, so cached decoding reads what a full pass reads.
    """
    layers = cfg.resolve_layers(base.num_layers)
    memory = get_kind("titans").kind_cls(base, cfg, layers).float()  # builds the memories; no hooks
    try:
        memory.load_memory_state_dict(state)
    except (RuntimeError, OrgmemError) as exc:
        raise IntegrityError(f"titans memory state does not fit its config: {exc}") from exc
    _frozen(memory)
    ops: dict[str, RowOp] = {}
    for key in memory.memories:

        def op(x: Tensor, out: Tensor, key: str = key) -> Tensor:
            return out + memory.apply_memory(key, x.float()).to(out.dtype)

        ops[f"model.layers.{key}"] = op
    return ops, [memory]


register_row_adapter("cms", _cms_adapter)
register_row_adapter("titans", _titans_adapter)
register_row_adapter("lora", _lora_adapter)
