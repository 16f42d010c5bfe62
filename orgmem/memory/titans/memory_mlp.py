"""The memory model M as pure functions of its weights: forward pass and closed-form write gradient.

Why pure functions: M's weights are *state* (one set per org / per meta-training episode), not module
parameters, so they are passed in and returned. The gradient of the associative loss is written out
by hand (a two-line backward pass per layer) instead of ``torch.func.grad``: it is cheaper, batches
over (batch, head) for free, and stays differentiable, so meta-training can backpropagate through
the writes. ``tests/memory/test_titans_memory.py`` checks it against ``torch.func.grad``.

Dimension glossary:
    b  batch (independent memories)        h  memory heads
    c  tokens in one write chunk           i / o  input / output width of one MLP layer
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor


def init_hidden_layers(heads: int, dims: Sequence[int], *, generator: torch.Generator | None = None
                       ) -> list[Tensor]:
    """Initial weights (h, i, o) of every layer but the last; the last starts at zero (reads zero)."""
    layers = []
    for d_in, d_out in zip(dims[:-2], dims[1:-1], strict=True):
        w = torch.randn(heads, d_in, d_out, generator=generator) * math.sqrt(2.0 / d_in)
        layers.append(w)
    return layers


def _act_grad(z: Tensor) -> Tensor:
    """Derivative of SiLU at ``z``."""
    s = torch.sigmoid(z)
    return s * (1 + z * (1 - s))


def unit(x: Tensor) -> Tensor:
    """x / ||x|| over the last dim, with a finite gradient at x = 0 (a zero key stays zero)."""
    return x * torch.rsqrt(x.pow(2).sum(-1, keepdim=True) + 1e-12)


def mlp_forward(weights: Sequence[Tensor], x: Tensor) -> Tensor:
    """M(x): ``x`` (b, h, c, i) through layers (b, h, i, o) with SiLU between them."""
    for j, w in enumerate(weights):
        x = x @ w
        if j < len(weights) - 1:
            x = F.silu(x)
    return x


def associative_grads(weights: Sequence[Tensor], keys: Tensor, values: Tensor, token_weights: Tensor
                      ) -> list[Tensor]:
    """d/dW of  L = sum_c tau_c * ||M(k_c) - v_c||^2  for every layer, per (b, h).

    keys (b, h, c, i), values (b, h, c, o), token_weights tau (b, h, c) (learning rate / chunk size).
    """
    pre, post = [], [keys]
    x = keys
    for j, w in enumerate(weights):
        z = x @ w
        pre.append(z)
        x = F.silu(z) if j < len(weights) - 1 else z
        post.append(x)
    delta = 2 * token_weights.unsqueeze(-1) * (post[-1] - values)  # dL/d(output), (b, h, c, o)
    grads: list[Tensor] = [torch.empty(0)] * len(weights)
    for j in range(len(weights) - 1, -1, -1):
        grads[j] = post[j].transpose(-1, -2) @ delta
        if j > 0:
            delta = (delta @ weights[j].transpose(-1, -2)) * _act_grad(pre[j - 1])
    return grads


def key_spread(keys: Tensor) -> Tensor:
    """Largest eigenvalue of sum_c k_c k_c^T per (b, h): keys (b, h, c, k) -> (b, h).

    Dividing a chunk's per-token rates by max(1, this) bounds the step along any key direction by
    the rate itself: c orthogonal unit keys each get a full step, c identical keys share one step
    (so a chunk of repeated tokens cannot overshoot). No gradient: it is a step-size normaliser.
    """
    with torch.no_grad():
        k = keys.float()
        gram = k @ k.transpose(-1, -2) if k.shape[-2] <= k.shape[-1] else k.transpose(-1, -2) @ k
        return torch.linalg.eigvalsh(gram)[..., -1].to(keys.dtype)


def clip_by_norm(grads: Sequence[Tensor], max_norm: float) -> list[Tensor]:
    """Scale each (b, h) memory's whole gradient to norm <= ``max_norm`` (keeps writes bounded)."""
    sq = cast(Tensor, sum(g.pow(2).sum(dim=(-1, -2)) for g in grads))
    scale = (max_norm * torch.rsqrt(sq + 1e-12)).clamp(max=1.0)[..., None, None]  # finite grad at 0
    return [g * scale for g in grads]
