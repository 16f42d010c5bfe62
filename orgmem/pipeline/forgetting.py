"""How much the parent memory has forgotten of an older chunk: the ``budget`` replay's ranking.

Score = NLL of the chunk's text with the parent memory minus NLL with the bare base (both over a
group's underlay), per token. A chunk the memory learned scores well below zero; one it has lost
(or never took) scores near zero or above, and is replayed first. Forward passes only, batched.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from orgmem.eval.scoring import score_targets
from orgmem.models.tokens import pad_token_id
from orgmem.pipeline.evaluation import memory_on
from orgmem.pipeline.replay import ForgetScorer

MAX_SCORED_TOKENS = 256  # the head of a chunk is enough to tell learned from lost


def _pairs(tokenizer, texts: Sequence[str]) -> tuple[list[int], list]:
    """(indices of scorable texts, their (first token, next tokens) pairs); a text of one token
    has nothing to score and is never ranked forgotten."""
    keep, pairs = [], []
    for i, text in enumerate(texts):
        ids = list(tokenizer(text)["input_ids"])[: MAX_SCORED_TOKENS + 1]
        if len(ids) >= 2:
            keep.append(i)
            pairs.append((ids[:1], ids[1:]))
    return keep, pairs


def forgetting_scorer(base, parent_memory: bytes, underlay: bytes | None = None) -> ForgetScorer:
    """A scorer of chunk texts against ``parent_memory`` (higher = held less)."""

    def score(texts: Sequence[str]) -> list[float]:
        keep, pairs = _pairs(base.tokenizer, texts)
        out = [float("-inf")] * len(texts)
        if not pairs:
            return out
        pad = pad_token_id(base.tokenizer)
        with torch.no_grad():
            with memory_on(base, None, underlay) as model:
                bare = score_targets(model, pairs, pad_id=pad)
            with memory_on(base, parent_memory, underlay) as model:
                held = score_targets(model, pairs, pad_id=pad)
        for i, h, b in zip(keep, held, bare, strict=True):
            out[i] = h.mean_nll - b.mean_nll
        return out

    return score
