"""An org model exported by orgmem: the frozen Llama base with the org's memory in its forward.

Self-contained (``torch`` and ``transformers`` only): copied into every exported folder and loaded
with ``AutoModelForCausalLM.from_pretrained(DIR, trust_remote_code=True)``. Each memory component
adds its term to the output of one base module, computed from that module's input, exactly as
orgmem's serving form does (``orgmem.memory.<kind>.rows``, applied by ``orgmem.serving.routing``):

- ``cms``: beside each wrapped layer's ``mlp``, ``out + gate(x) * (chain(x) - x)``, the chain of
  levels in the fused layout orgmem serves (``orgmem.memory.cms.fused``);
- ``lora``: on each adapted linear, ``out + B(A(x)) * alpha / r``;
- ``titans``: on each wrapped decoder layer, the read-only memory read of the layer's input.

Several memories on one module apply in order, bottom first (org, then group), each to the output
the previous one left. Memory weights stay float32 whatever dtype the base loads in, and every
memory term is computed in float32 and cast back to the module's dtype, as orgmem does.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from transformers import LlamaForCausalLM
from transformers.activations import ACT2FN

from .configuration_orgmem import OrgmemLlamaConfig

MEMORY_PREFIX = "orgmem_memory"


def _weight(*shape: int) -> nn.Parameter:
    """A frozen float32 memory weight, filled from the folder's safetensors at load."""
    return nn.Parameter(torch.zeros(*shape, dtype=torch.float32), requires_grad=False)


class CmsBlock(nn.Module):
    """One wrapped layer's CMS block, fused: level 0's gate/up rows and the gate row in ``first``."""

    def __init__(self, hidden: int, widths: list[int], act: str, gated: bool) -> None:
        super().__init__()
        self.widths = list(widths)
        self.act = ACT2FN[act]
        self.gated = gated
        self.first = _weight(2 * widths[0] + int(gated), hidden)
        self.first_bias = _weight(2 * widths[0] + 1) if gated else None
        self.gate_up = nn.ParameterList(_weight(2 * w, hidden) for w in widths[1:])
        self.down = nn.ParameterList(_weight(hidden, w) for w in widths)

    def forward(self, x: Tensor, out: Tensor) -> Tensor:
        xf = x.float()
        bias = self.first_bias.float() if self.first_bias is not None else None
        first = F.linear(xf, self.first.float(), bias)
        h = xf
        for j, width in enumerate(self.widths):
            gu = first if j == 0 else F.linear(h, self.gate_up[j - 1].float())
            h = h + F.linear(self.act(gu[..., :width]) * gu[..., width:2 * width], self.down[j].float())
        delta = h - xf
        if self.gated:
            delta = torch.sigmoid(first[..., -1:]) * delta
        return out + delta.to(out.dtype)


class LoraDelta(nn.Module):
    """One adapted linear's low-rank update ``B(A(x)) * scale``."""

    def __init__(self, in_features: int, out_features: int, rank: int, scale: float) -> None:
        super().__init__()
        self.lora_A = _weight(rank, in_features)
        self.lora_B = _weight(out_features, rank)
        self.scale = float(scale)

    def forward(self, x: Tensor, out: Tensor) -> Tensor:
        a, b = self.lora_A.float(), self.lora_B.float()
        return out + (F.linear(F.linear(x.to(a.dtype), a), b) * self.scale).to(out.dtype)


def _unit(x: Tensor) -> Tensor:
    return x * torch.rsqrt(x.pow(2).sum(-1, keepdim=True) + 1e-12)


class TitansRead(nn.Module):
    """One wrapped layer's Titans memory, read-only: each token's query reads the saved memory MLP."""

    def __init__(self, hidden: int, heads: int, dim_head: int, depth: int, expansion: int) -> None:
        super().__init__()
        self.hidden, self.heads, self.dim_head = hidden, heads, dim_head
        inner = heads * dim_head
        self.center = _weight(hidden)
        self.query = _weight(inner, hidden)
        self.gate_weight = _weight(heads, hidden)
        self.gate_bias = _weight(heads)
        self.gate_scale = _weight(heads)
        self.out_proj = _weight(hidden, inner)
        dims = [dim_head] + [dim_head * expansion] * (depth - 1) + [dim_head]
        pairs = zip(dims[:-1], dims[1:], strict=True)
        self.weights = nn.ParameterList(_weight(1, heads, i, o) for i, o in pairs)

    def forward(self, x: Tensor, out: Tensor) -> Tensor:
        xn = F.rms_norm(x.float() - self.center.float(), (self.hidden,), eps=1e-6)
        b, n, _ = xn.shape
        q = F.linear(xn, self.query.float()).view(b, n, self.heads, self.dim_head).transpose(1, 2)
        y = _unit(q)
        last = len(self.weights) - 1
        for j, w in enumerate(self.weights):
            y = y @ w.float()
            if j < last:
                y = F.silu(y)
        gate = torch.sigmoid(F.linear(xn, self.gate_weight.float(), self.gate_bias.float()))
        y = y * (gate * self.gate_scale.float()).transpose(1, 2).unsqueeze(-1)
        read = F.linear(y.transpose(1, 2).reshape(b, n, self.heads * self.dim_head), self.out_proj.float())
        return out + read.to(out.dtype)


Ops = list[tuple[str, nn.Module]]
"""(base module path, op) pairs: the op adds its term to that module's output."""


def _cms(model: nn.Module, spec: dict[str, Any], hidden: int, act: str) -> tuple[nn.Module, Ops]:
    blocks = nn.ModuleDict({str(i): CmsBlock(hidden, spec["widths"], act, bool(spec["gated"]))
                            for i in spec["layers"]})
    return blocks, [(f"model.layers.{i}.mlp", blocks[str(i)]) for i in spec["layers"]]


def _lora(model: nn.Module, spec: dict[str, Any], hidden: int, act: str) -> tuple[nn.Module, Ops]:
    deltas = nn.ModuleList()
    ops: Ops = []
    for path in spec["paths"]:
        out_features, in_features = model.get_submodule(path).get_parameter("weight").shape
        delta = LoraDelta(int(in_features), int(out_features), int(spec["r"]), float(spec["scale"]))
        deltas.append(delta)
        ops.append((path, delta))
    return deltas, ops


def _titans(model: nn.Module, spec: dict[str, Any], hidden: int, act: str) -> tuple[nn.Module, Ops]:
    reads = nn.ModuleDict({str(i): TitansRead(hidden, int(spec["heads"]), int(spec["dim_head"]),
                                              int(spec["depth"]), int(spec["expansion"]))
                           for i in spec["layers"]})
    return reads, [(f"model.layers.{i}", reads[str(i)]) for i in spec["layers"]]


COMPONENTS = {"cms": _cms, "lora": _lora, "titans": _titans}


def _component(model: nn.Module, spec: dict[str, Any], hidden: int, act: str) -> tuple[nn.Module, Ops]:
    """The module holding one component's weights, and the ops it applies."""
    build = COMPONENTS.get(spec["kind"])
    if build is None:
        raise ValueError(f"orgmem memory kind {spec['kind']!r} is not known to this modeling code "
                         f"(known: {sorted(COMPONENTS)})")
    return build(model, spec, hidden, act)


def _hook(ops: list[nn.Module]):
    """A forward hook adding each op's term to the module's output, in order (as orgmem's router)."""

    def hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
        x = args[0] if args else kwargs["hidden_states"]
        out = output[0] if isinstance(output, tuple) else output
        for op in ops:
            out = op(x, out)
        return (out, *output[1:]) if isinstance(output, tuple) else out

    return hook


def _rope_in_model_dtype(module: nn.Module, args: tuple) -> None:
    """Round ``inv_freq`` to the hidden states' dtype, as orgmem's ``model.to(dtype)`` does."""
    hidden = args[0]
    inv_freq = module.get_buffer("inv_freq")
    if inv_freq.dtype != hidden.dtype and hidden.dtype in (torch.bfloat16, torch.float16):
        module.register_buffer("inv_freq", inv_freq.to(hidden.dtype), persistent=False)


class OrgmemLlamaForCausalLM(LlamaForCausalLM):
    """``LlamaForCausalLM`` whose forward includes the org's memory (see the module docstring)."""

    config_class = OrgmemLlamaConfig
    _keep_in_fp32_modules_strict = [MEMORY_PREFIX]

    def __init__(self, config: OrgmemLlamaConfig) -> None:
        super().__init__(config)
        stack = (config.orgmem_memory or {}).get("layers", [])
        hidden, act = int(config.hidden_size), str(config.hidden_act)
        self.orgmem_memory = nn.ModuleList()
        ops: dict[str, list[nn.Module]] = {}
        for layer in stack:
            components = nn.ModuleList()
            for spec in layer["components"]:
                module, pairs = _component(self, spec, hidden, act)
                components.append(module)
                for path, op in pairs:
                    ops.setdefault(path, []).append(op)
            self.orgmem_memory.append(components)
        for path, path_ops in ops.items():
            self.get_submodule(path).register_forward_hook(_hook(path_ops), with_kwargs=True)
        if config.orgmem_rope_in_model_dtype:
            self.model.rotary_emb.register_forward_pre_hook(_rope_in_model_dtype)
        self.post_init()
