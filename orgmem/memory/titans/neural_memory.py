"""Titans neural long-term memory: a deep MLP whose weights are written at test time.

The math, per memory head, with keys/values/queries projected from the layer's hidden states:

    write (one chunk j of c tokens, all gradients taken at the chunk-start weights W):
        G_j = clip( d/dW  sum_t tau_t ||M_W(k_t) - v_t||^2 ),   tau_t = theta_t / max(1, lambda_j)
        S_j = eta_j * S_{j-1} - G_j                              momentum ("surprise")
        W_j = W_0 + (1 - alpha_j) * (W_{j-1} - W_0) + S_j        decay ("forgetting") towards W_0
    read (token t in chunk j):
        y_t = W_out( gate_t * M_{W_{j-1}}(q_t) ),   gate_t = scale * sigmoid(w_g . x_t + b_g)

theta_t (learning rate), eta_j and alpha_j (chunk means) come from learned projections of x_t;
lambda_j is the largest eigenvalue of the chunk's key Gram matrix sum_t k_t k_t^T.
Why the guards: hidden states are centred (one layer's states are highly correlated, so uncentred
reads return the average stored value; ``docs/knowledge_tuning.md``), keys and values are
unit-normalised, theta_t <= max_lr < 1 and dividing by lambda_j bound the step along any key
direction (distinct keys each get a full step, repeated keys share one), and the chunk gradient is
clipped: a write cannot diverge.
W_0's last layer is zero, so an empty memory reads exactly zero, and ``gate_scale`` starts at zero
(gate closed): attaching the memory leaves the base model's function unchanged. Decay pulls towards
W_0 rather than to zero so forgetting returns the memory to "empty" instead of destroying its first
layer.

Tokens of an unfinished chunk wait in the state (``pending_*``) and the last hidden states needed by
the causal conv / key shift travel in ``tail``, so writing A then B in two calls equals writing A+B.

Dimension glossary:
    b batch (independent memories)   n new tokens   p pending tokens   c chunk size
    d model width   h heads   k key/query width per head   v value width per head   t tail length
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from orgmem.memory.titans.memory_mlp import (
    associative_grads,
    clip_by_norm,
    init_hidden_layers,
    key_spread,
    mlp_forward,
    unit,
)

RATES = 4  # per token: learning rate theta, momentum eta, decay alpha, valid flag


@dataclass
class MemoryState:
    """What a memory knows and what it needs to continue writing; every tensor has batch first."""

    weights: list[Tensor]  # per layer (b, h, i, o): the memory M itself
    momentum: list[Tensor]  # same shapes: running surprise S
    pending_k: Tensor  # (b, h, p, k) tokens of the unfinished chunk
    pending_v: Tensor  # (b, h, p, v)
    pending_rates: Tensor  # (b, h, p, RATES)
    tail: Tensor  # (b, t, d) last normalised hidden states (conv / key-shift context)

    def tensors(self) -> dict[str, Tensor]:
        """Flat name -> tensor mapping, graph kept (``from_tensors`` inverts it)."""
        out = {f"weights.{i}": w for i, w in enumerate(self.weights)}
        out |= {f"momentum.{i}": m for i, m in enumerate(self.momentum)}
        out |= {"pending_k": self.pending_k, "pending_v": self.pending_v,
                "pending_rates": self.pending_rates, "tail": self.tail}
        return out

    def to_tensors(self) -> dict[str, Tensor]:
        """Flat name -> tensor mapping (safetensors-ready)."""
        return {k: v.detach().contiguous() for k, v in self.tensors().items()}

    def nbytes(self) -> int:
        """Bytes held by the state's tensors."""
        return sum(t.numel() * t.element_size() for t in self.tensors().values())

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor]) -> MemoryState:
        depth = sum(1 for name in tensors if name.startswith("weights."))
        try:
            return cls(weights=[tensors[f"weights.{i}"] for i in range(depth)],
                       momentum=[tensors[f"momentum.{i}"] for i in range(depth)],
                       pending_k=tensors["pending_k"], pending_v=tensors["pending_v"],
                       pending_rates=tensors["pending_rates"], tail=tensors["tail"])
        except KeyError as exc:
            raise KeyError(f"memory state lacks tensor {exc.args[0]!r} (has {sorted(tensors)})") from None

    def map(self, fn) -> MemoryState:
        """Apply ``fn`` to every tensor (detach, to(device), index the batch...)."""
        kw: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            kw[f.name] = [fn(t) for t in value] if isinstance(value, list) else fn(value)
        return replace(self, **kw)

    def detach(self) -> MemoryState:
        return self.map(lambda t: t.detach())

    @property
    def pending(self) -> int:
        return int(self.pending_k.shape[2])


class NeuralMemory(nn.Module):
    """One Titans memory reading/writing the hidden states ``x`` (b, n, d) of one layer."""

    center: Tensor  # a buffer (registered in ``__init__``)

    def __init__(self, dim: int, *, heads: int = 4, dim_head: int = 64, depth: int = 2, expansion: int = 4,  # noqa: PLR0913  # keyword-only hyperparameters of the module
                 chunk_size: int = 16, max_lr: float = 0.5, conv_kernel: int = 4, key_shift: bool = True,
                 max_grad_norm: float = 1.0, gate_bias: float = -3.0, seed: int = 0):
        super().__init__()
        if depth < 2:
            raise ValueError(f"titans memory depth must be >= 2 (a deep memory), got {depth}")
        if not 0 < max_lr < 1:
            raise ValueError(f"max_lr must be in (0, 1) so a write cannot diverge, got {max_lr}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.dim, self.heads, self.dim_head, self.chunk_size = dim, heads, dim_head, chunk_size
        self.max_lr, self.max_grad_norm, self.key_shift = max_lr, max_grad_norm, int(key_shift)
        self.conv_kernel = conv_kernel
        self.tail_len = max(conv_kernel - 1, 0) + self.key_shift
        inner = heads * dim_head
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer("center", torch.zeros(dim))  # mean hidden state, set by meta-training
        self.to_qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.conv = nn.Parameter(torch.zeros(2 * inner, 1, max(conv_kernel, 1)))  # keys, values
        self.to_rates = nn.Linear(dim, 3 * heads)
        self.to_gate = nn.Linear(dim, heads)
        self.gate_scale = nn.Parameter(torch.zeros(heads))  # closed: the base function at attach
        self.to_out = nn.Linear(inner, dim, bias=False)
        dims = [dim_head] + [dim_head * expansion] * (depth - 1) + [dim_head]
        self.init_w = nn.ParameterList(init_hidden_layers(heads, dims, generator=gen))
        self.last_shape = (heads, dims[-2], dims[-1])
        self._init_meta(gen, gate_bias)

    def _init_meta(self, gen: torch.Generator, gate_bias: float) -> None:
        """Priors that make the untrained memory sensible: query == key map, out == values^T."""
        inner = self.heads * self.dim_head
        qk = torch.empty(inner, self.dim)
        vv = torch.empty(inner, self.dim)
        with torch.no_grad():
            nn.init.orthogonal_(qk, generator=gen)
            nn.init.orthogonal_(vv, generator=gen)
            self.to_qkv.weight.copy_(torch.cat([qk, qk, vv]))
            self.to_out.weight.copy_(vv.T)
            self.conv.zero_()
            self.conv[:, 0, -1] = 1.0  # identity conv
            self.to_rates.weight.zero_()
            h = self.heads
            # theta = max_lr/2, eta ~ 0.88, alpha ~ 0.01 until meta-training says otherwise
            biases = [torch.zeros(h), torch.full((h,), 2.0), torch.full((h,), -4.6)]
            self.to_rates.bias.copy_(torch.cat(biases))
            self.to_gate.weight.zero_()
            self.to_gate.bias.fill_(gate_bias)

    @torch.no_grad()
    def calibrate(self, hidden: Tensor) -> None:
        """Centre on the mean of real hidden states (n, d) entering the layer and scale the read-out so
        a unit read maps back to their typical size (set once, at the start of meta-training)."""
        self.center.copy_(hidden.float().mean(0))
        rms = (hidden.float() - self.center).pow(2).mean().sqrt()
        inner = self.heads * self.dim_head
        vv = self.to_qkv.weight[2 * inner:]
        self.to_out.weight.copy_(vv.T * rms * self.dim_head ** 0.5)

    # ---- state -------------------------------------------------------------------------------
    def initial_weights(self, batch: int) -> list[Tensor]:
        """W_0 for ``batch`` memories: learned hidden layers, zero last layer (reads zero)."""
        hidden = [w.unsqueeze(0).expand(batch, -1, -1, -1) for w in self.init_w]
        last = self.to_out.weight.new_zeros(batch, *self.last_shape)
        return [*hidden, last]

    def initial_state(self, batch: int = 1) -> MemoryState:
        """An empty memory (reads zero) for ``batch`` independent streams."""
        weights = self.initial_weights(batch)
        p = self.to_out.weight
        return MemoryState(weights=weights, momentum=[torch.zeros_like(w) for w in weights],
                           pending_k=p.new_zeros(batch, self.heads, 0, self.dim_head),
                           pending_v=p.new_zeros(batch, self.heads, 0, self.dim_head),
                           pending_rates=p.new_zeros(batch, self.heads, 0, RATES),
                           tail=p.new_zeros(batch, self.tail_len, self.dim))

    # ---- projections -------------------------------------------------------------------------
    def normalise(self, x: Tensor) -> Tensor:
        """Centre (correlated states: docs/knowledge_tuning.md) and RMS-normalise the hidden states."""
        return F.rms_norm(x.float() - self.center, (self.dim,), eps=1e-6)

    def _split_heads(self, t: Tensor) -> Tensor:
        b, n, _ = t.shape
        return t.view(b, n, self.heads, self.dim_head).transpose(1, 2)

    def project(self, xn: Tensor, tail: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Queries, keys, values (b, h, n, k) of normalised states ``xn`` and the next tail.

        The causal conv and the key shift apply to keys and values only (the write side): a query
        depends on its own token alone, so KV-cached decoding reads exactly what a full pass reads.
        """
        n, t, inner = xn.shape[1], self.tail_len, self.heads * self.dim_head
        ctx = torch.cat([tail, xn], dim=1)
        kv = F.linear(ctx, self.to_qkv.weight[inner:])
        if self.conv_kernel > 1:
            kv = F.conv1d(kv.transpose(1, 2), self.conv, groups=kv.shape[-1]).transpose(1, 2)
        k, v = kv.chunk(2, dim=-1)
        k = k[:, k.shape[1] - n - self.key_shift: k.shape[1] - self.key_shift]
        k, v = (self._split_heads(z[:, z.shape[1] - n:]) for z in (k, v))
        return self.read_queries(xn), unit(k), unit(v), ctx[:, ctx.shape[1] - t:]

    def read_queries(self, xn: Tensor) -> Tensor:
        """Queries alone (b, h, n, k), for reads without writing."""
        q = F.linear(xn, self.to_qkv.weight[: self.heads * self.dim_head])
        return unit(self._split_heads(q))

    def rates(self, xn: Tensor, mask: Tensor | None) -> Tensor:
        """Per token and head: (theta, eta, alpha, valid) -> (b, h, n, RATES)."""
        lr, mom, dec = torch.sigmoid(self.to_rates(xn)).chunk(3, dim=-1)  # (b, n, h) each
        valid = torch.ones_like(lr) if mask is None else mask.to(lr.dtype).unsqueeze(-1).expand_as(lr)
        return torch.stack([lr * self.max_lr * valid, mom, dec, valid], dim=-1).transpose(1, 2)

    # ---- write and read ----------------------------------------------------------------------
    def write_chunk(self, weights: list[Tensor], momentum: list[Tensor], k: Tensor, v: Tensor, r: Tensor
                    ) -> tuple[list[Tensor], list[Tensor]]:
        """One chunk's gradient step with momentum and decay; chunks with no valid token are no-ops."""
        lr, mom, dec, valid = r.unbind(-1)  # (b, h, c)
        count = valid.sum(-1)
        denom = count.clamp(min=1)
        spread = key_spread(k * valid.unsqueeze(-1)).clamp(min=1.0)
        grads = clip_by_norm(associative_grads(weights, k, v, lr / spread[..., None]), self.max_grad_norm)
        eta = ((mom * valid).sum(-1) / denom)[..., None, None]
        alpha = ((dec * valid).sum(-1) / denom)[..., None, None]
        live = (count > 0)[..., None, None]
        w0 = self.initial_weights(k.shape[0])
        new_w, new_m = [], []
        for w, m, g, base in zip(weights, momentum, grads, w0, strict=True):
            m2 = eta * m - g
            w2 = base + (1 - alpha) * (w - base) + m2
            new_w.append(torch.where(live, w2, w))
            new_m.append(torch.where(live, m2, m))
        return new_w, new_m

    def scan(self, q: Tensor, k: Tensor, v: Tensor, r: Tensor, state: MemoryState
             ) -> tuple[Tensor, MemoryState]:
        """Read every new token with the weights before its chunk; write each chunk once it is full."""
        p, c = state.pending, self.chunk_size
        keys = torch.cat([state.pending_k, k], dim=2)
        vals = torch.cat([state.pending_v, v], dim=2)
        rates = torch.cat([state.pending_rates, r], dim=2)
        total = keys.shape[2]
        weights, momentum, reads = state.weights, state.momentum, []
        done = total - total % c
        for s in range(0, total, c):
            e = min(s + c, total)
            if e > max(s, p):
                reads.append(mlp_forward(weights, q[:, :, max(s, p) - p: e - p]))
            if e - s == c:
                weights, momentum = self.write_chunk(weights, momentum, keys[:, :, s:e], vals[:, :, s:e],
                                                     rates[:, :, s:e])
        new = MemoryState(weights=weights, momentum=momentum, pending_k=keys[:, :, done:],
                          pending_v=vals[:, :, done:], pending_rates=rates[:, :, done:], tail=state.tail)
        return torch.cat(reads, dim=2), new

    def flush(self, state: MemoryState) -> MemoryState:
        """Write the unfinished chunk now (end of a meta-training episode's write phase)."""
        if state.pending == 0:
            return state
        weights, momentum = self.write_chunk(state.weights, state.momentum, state.pending_k,
                                             state.pending_v, state.pending_rates)
        empty = state.pending_k[:, :, :0]
        return replace(state, weights=weights, momentum=momentum, pending_k=empty,
                       pending_v=state.pending_v[:, :, :0], pending_rates=state.pending_rates[:, :, :0])

    def output(self, y: Tensor, xn: Tensor) -> Tensor:
        """Gate each head's read (b, h, n, v) and project back to the model width (b, n, d)."""
        gate = torch.sigmoid(self.to_gate(xn)) * self.gate_scale  # (b, n, h)
        y = y * gate.transpose(1, 2).unsqueeze(-1)
        b, h, n, dv = y.shape
        return self.to_out(y.transpose(1, 2).reshape(b, n, h * dv))

    def forward(self, x: Tensor, state: MemoryState | None = None, *, write: bool = True,
                mask: Tensor | None = None) -> tuple[Tensor, MemoryState]:
        """Read (and, with ``write``, write) the hidden states ``x`` (b, n, d); ``mask`` (b, n) marks
        real tokens (padding does not write). Returns the memory's contribution and the new state."""
        if x.ndim != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"titans memory expects hidden states (batch, tokens, {self.dim}), "
                             f"got shape {tuple(x.shape)}")
        state = state if state is not None else self.initial_state(x.shape[0])
        if x.shape[1] == 0:
            return x.new_zeros(x.shape), state
        xn = self.normalise(x)
        if write:
            q, k, v, tail = self.project(xn, state.tail)
            y, state = self.scan(q, k, v, self.rates(xn, mask), state)
            state.tail = tail
        else:
            y = mlp_forward(state.weights, self.read_queries(xn))
        return self.output(y, xn).to(x.dtype), state
