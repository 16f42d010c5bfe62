"""The ``lora`` kind's serving form: each adapted linear's low-rank update as a row operation."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from orgmem.errors import IntegrityError
from orgmem.memory.config import MemoryConfig
from orgmem.memory.rows import RowForm, RowOp
from orgmem.models.layers import model_device


def lora_rows(base, cfg: MemoryConfig, state: dict[str, Tensor]) -> RowForm:
    """LoRA: ``out + B(A(x)) * alpha / r`` on each adapted linear (what peft computes, dropout off)."""
    scale = float(cfg.alpha) / float(cfg.r)  # type: ignore[attr-defined]
    device = model_device(base.model)
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
