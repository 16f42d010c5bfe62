"""A base model's parts, for code that runs it piece by piece (Llama-family causal LMs).

Why: only the layers that carry memory change during training, so the engine (packed rows) and
Titans meta-training (cached episode states) run the frozen lower layers once and the upper ones
per step; memory kinds hook into the decoder layers. All of them reach into ``model.model`` here,
the one place that knows its layout.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from transformers.masking_utils import create_causal_mask


def submodule(parent: nn.Module, name: str) -> nn.Module:
    """``parent.<name>``, checked to be a module (torch types an attribute read as ``Tensor | Module``)."""
    child = getattr(parent, name)
    if not isinstance(child, nn.Module):
        raise TypeError(f"{type(parent).__name__}.{name} is a {type(child).__name__}, not a module")
    return child


def linear(parent: nn.Module, name: str) -> nn.Linear:
    """``parent.<name>``, checked to be a linear layer (a base MLP's ``gate_proj``, ``up_proj``...)."""
    child = submodule(parent, name)
    if not isinstance(child, nn.Linear):
        raise TypeError(f"{type(parent).__name__}.{name} is a {type(child).__name__}, not nn.Linear")
    return child


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder layer list of a HF Llama-family causal LM (``model.model.layers``)."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise TypeError(f"{type(model).__name__} has no model.layers: not a Llama-family causal LM")
    return layers


def model_device(model: nn.Module) -> torch.device:
    """Where the model's weights are (cpu for a model without any)."""
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def embed(model, ids: Tensor) -> Tensor:
    return model.model.embed_tokens(ids)


def run_layers(model, hidden: Tensor, start: int, end: int, *, positions: Tensor | None = None,
               mask: Tensor | None = None) -> Tensor:
    """Hidden states entering layer ``end`` given those entering layer ``start`` (b, n, d).

    Without ``positions``/``mask`` the rows are fresh sequences (positions from 0) under a plain
    causal mask, exact for every real token of right-padded rows; packed rows pass their own
    (``orgmem.engine.layers.run_packed``).
    """
    if positions is None:
        positions = torch.arange(hidden.shape[1], device=hidden.device).unsqueeze(0)
    if mask is None:
        mask = create_causal_mask(config=model.config, inputs_embeds=hidden, attention_mask=None, cache=None,
                                  position_ids=positions)
    rope = model.model.rotary_emb(hidden, position_ids=positions)
    for layer in decoder_layers(model)[start:end]:
        out = layer(hidden, attention_mask=mask, position_embeddings=rope, position_ids=positions,
                    use_cache=False)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


def final_hidden(model, hidden: Tensor) -> Tensor:
    """Final norm (the lm_head is applied later, only where a loss needs logits)."""
    return model.model.norm(hidden)


def lm_logits(model, hidden: Tensor) -> Tensor:
    return model.lm_head(hidden)
