"""Run a slice of a Llama-family decoder stack on hidden states (for cached lower layers).

Meta-training touches only the layers from the first memory layer up: the frozen layers below see
the same tokens every time, so their output is computed once per episode and cached (identical
logits, a large share of the step time saved: ``docs/knowledge_tuning.md``). Sequences here are fresh
(positions from 0) and right-padded, so a plain causal mask is exact for every real token.
"""

from __future__ import annotations

import torch
from torch import Tensor
from transformers.masking_utils import create_causal_mask

from orgmem.memory.interface import decoder_layers


def run_layers(model, hidden: Tensor, start: int, stop: int) -> Tensor:
    """Hidden states entering layer ``stop`` given those entering layer ``start`` (b, n, d)."""
    inner = model.model
    positions = torch.arange(hidden.shape[1], device=hidden.device).unsqueeze(0)
    rotary = inner.rotary_emb(hidden, position_ids=positions)
    mask = create_causal_mask(config=model.config, inputs_embeds=hidden, attention_mask=None, cache=None,
                              position_ids=positions)
    for layer in decoder_layers(model)[start:stop]:
        out = layer(hidden, attention_mask=mask, position_embeddings=rotary, position_ids=positions)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


def embed(model, input_ids: Tensor) -> Tensor:
    return model.model.embed_tokens(input_ids)


def logits_at(model, hidden: Tensor, positions: Tensor) -> Tensor:
    """Final-norm + LM head only where a loss is taken: ``positions`` is a (b, n) bool mask."""
    return model.lm_head(model.model.norm(hidden[positions]))
