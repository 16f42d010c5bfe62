"""Each memory kind's saved weights in the layout the exported modeling code reads.

A saved memory (``orgmem.memory.io``) holds each component's *training-form* state; serving turns
it into row operations (``orgmem.memory.<kind>.rows``). An exported folder carries the serving
form: the spec ``modeling_orgmem.py`` builds its modules from, and their tensors, named relative
to the component's module. Each converter does the arithmetic-free part of its kind's row builder
(concatenations, slices, dtype), so the exported forward computes the same dot products in the same
order as orgmem's served forward (the round-trip test compares logits). A kind without a converter
is refused by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from orgmem.errors import IntegrityError, OrgmemError
from orgmem.memory.cms import CmsConfig
from orgmem.memory.config import MemoryConfig
from orgmem.memory.lora import LoraMemoryConfig
from orgmem.memory.titans import TitansConfig


@dataclass(frozen=True)
class ExportComponent:
    """One memory component as the modeling code reads it: its spec and its tensors."""

    spec: dict[str, Any]
    tensors: dict[str, Tensor]


Converter = Callable[[MemoryConfig, dict[str, Tensor], int], ExportComponent]


def _f32(t: Tensor) -> Tensor:
    return t.detach().float().contiguous()


def _take(state: dict[str, Tensor], key: str, kind: str) -> Tensor:
    if key not in state:
        raise IntegrityError(f"{kind} memory state lacks tensor {key!r} (has {sorted(state)[:5]}...)")
    return state[key]


def cms_component(cfg: MemoryConfig, state: dict[str, Tensor], num_layers: int) -> ExportComponent:
    """CMS blocks fused as ``FusedCmsBlock`` does: level 0's gate/up rows (+ the gate row) in ``first``."""
    if not isinstance(cfg, CmsConfig):
        raise IntegrityError(f"a cms memory state came with a {cfg.kind!r} config")
    layers = cfg.resolve_layers(num_layers)
    tensors: dict[str, Tensor] = {}
    for i in layers:
        def level(j: int, name: str, i: int = i) -> Tensor:
            return _take(state, f"blocks.{i}.levels.{j}.{name}.weight", "cms")

        first = [level(0, "gate_proj"), level(0, "up_proj")]
        if cfg.gate:
            gate_w = _take(state, f"blocks.{i}.gate.weight", "cms")
            gate_b = _take(state, f"blocks.{i}.gate.bias", "cms")
            first.append(gate_w)
            bias = torch.cat([gate_w.new_zeros(2 * cfg.widths[0]), gate_b])
            tensors[f"{i}.first_bias"] = _f32(bias)
        tensors[f"{i}.first"] = _f32(torch.cat([t.float() for t in first]))
        for j in range(1, len(cfg.widths)):
            tensors[f"{i}.gate_up.{j - 1}"] = _f32(torch.cat([level(j, "gate_proj").float(),
                                                             level(j, "up_proj").float()]))
        for j in range(len(cfg.widths)):
            tensors[f"{i}.down.{j}"] = _f32(level(j, "down_proj"))
    spec = {"kind": "cms", "layers": layers, "widths": list(cfg.widths), "gated": bool(cfg.gate)}
    return ExportComponent(spec, tensors)


def lora_pairs(state: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
    """``{module path: (A, B)}`` of a lora memory state (keys ``<path>.lora_A.weight``)."""
    pairs: dict[str, dict[str, Tensor]] = {}
    for key, value in state.items():
        path, sep, rest = key.partition(".lora_")
        if not sep or rest not in ("A.weight", "B.weight"):
            raise IntegrityError(f"lora memory: unexpected tensor {key!r}")
        pairs.setdefault(path, {})[rest[0]] = value
    out: dict[str, tuple[Tensor, Tensor]] = {}
    for path, ab in sorted(pairs.items()):
        if set(ab) != {"A", "B"}:
            raise IntegrityError(f"lora memory: {path!r} lacks lora_A or lora_B")
        out[path] = (ab["A"], ab["B"])
    return out


def lora_component(cfg: MemoryConfig, state: dict[str, Tensor], num_layers: int) -> ExportComponent:
    """LoRA: each adapted linear's A and B, with the scale alpha / r."""
    if not isinstance(cfg, LoraMemoryConfig):
        raise IntegrityError(f"a lora memory state came with a {cfg.kind!r} config")
    pairs = lora_pairs(state)
    tensors: dict[str, Tensor] = {}
    for n, (a, b) in enumerate(pairs.values()):
        tensors[f"{n}.lora_A"], tensors[f"{n}.lora_B"] = _f32(a), _f32(b)
    spec = {"kind": "lora", "paths": list(pairs), "r": int(cfg.r), "alpha": int(cfg.alpha),
            "scale": float(cfg.alpha) / float(cfg.r)}
    return ExportComponent(spec, tensors)


def titans_component(cfg: MemoryConfig, state: dict[str, Tensor], num_layers: int) -> ExportComponent:
    """Titans, read-only as served: the query rows of ``to_qkv``, the read gate, the out projection
    and the saved memory MLP weights (the write-side meta-parameters are not needed to read)."""
    if not isinstance(cfg, TitansConfig):
        raise IntegrityError(f"a titans memory state came with a {cfg.kind!r} config")
    layers = cfg.resolve_layers(num_layers)
    inner = cfg.heads * cfg.dim_head
    tensors: dict[str, Tensor] = {}
    for i in layers:
        def meta(name: str, i: int = i) -> Tensor:
            return _take(state, f"{i}.meta.{name}", "titans")

        tensors[f"{i}.center"] = _f32(meta("center"))
        tensors[f"{i}.query"] = _f32(meta("to_qkv.weight")[:inner])
        tensors[f"{i}.gate_weight"] = _f32(meta("to_gate.weight"))
        tensors[f"{i}.gate_bias"] = _f32(meta("to_gate.bias"))
        tensors[f"{i}.gate_scale"] = _f32(meta("gate_scale"))
        tensors[f"{i}.out_proj"] = _f32(meta("to_out.weight"))
        for j in range(cfg.depth):
            tensors[f"{i}.weights.{j}"] = _f32(_take(state, f"{i}.weights.{j}", "titans"))
    spec = {"kind": "titans", "layers": layers, "heads": cfg.heads, "dim_head": cfg.dim_head,
            "depth": cfg.depth, "expansion": cfg.expansion}
    return ExportComponent(spec, tensors)


CONVERTERS: dict[str, Converter] = {
    "cms": cms_component,
    "lora": lora_component,
    "titans": titans_component,
}


def exportable_kinds() -> list[str]:
    return sorted(CONVERTERS)


def convert(cfg: MemoryConfig, state: dict[str, Tensor], num_layers: int, source: str) -> ExportComponent:
    """``cfg``'s component in the exported layout; a kind without a converter is refused by name."""
    converter = CONVERTERS.get(cfg.kind)
    if converter is None:
        raise OrgmemError(f"{source}: memory kind {cfg.kind!r} cannot be exported "
                          f"(exportable kinds: {', '.join(exportable_kinds())})")
    return converter(cfg, state, num_layers)
