"""Teacher-forced scoring: how likely a model finds given target tokens after a given prefix.

Everything here is one forward pass per batch (no generation), so it is the cheap part of an
evaluation: answer NLL, generic perplexity, and the per-position log-probabilities the KL to the
base is computed from. Sequences are right-padded (positions start at 0 as when scored alone).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from orgmem.eval.generation import length_batches
from orgmem.models.layers import model_device

Pair = tuple[Sequence[int], Sequence[int]]


@dataclass(frozen=True)
class TargetScore:
    """Summed negative log-likelihood (nats) of a target and its token count."""

    nll_sum: float
    n_tokens: int

    @property
    def mean_nll(self) -> float:
        return self.nll_sum / self.n_tokens if self.n_tokens else float("nan")


def _check_pairs(pairs: Sequence[Pair]) -> None:
    for i, (prefix, target) in enumerate(pairs):
        if not prefix or not target:
            raise ValueError(f"pair {i}: prefix ({len(prefix)} tokens) and target ({len(target)} tokens) "
                             "must both be non-empty")


@torch.no_grad()
def _target_logprob_batches(model, pairs: Sequence[Pair], batch_size: int, pad_id: int
                            ) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield (pair index, [target_len, vocab] log-probs predicting each target token)."""
    _check_pairs(pairs)
    device = model_device(model)
    seqs = [list(p) + list(t) for p, t in pairs]
    for batch in length_batches([len(s) for s in seqs], batch_size):
        width = max(len(seqs[i]) for i in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):
            ids[row, : len(seqs[i])] = torch.tensor(seqs[i], dtype=torch.long)
            mask[row, : len(seqs[i])] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        for row, i in enumerate(batch):
            start, end = len(pairs[i][0]), len(seqs[i])
            yield i, F.log_softmax(logits[row, start - 1 : end - 1], dim=-1)


def score_targets(model, pairs: Sequence[Pair], *, pad_id: int, batch_size: int = 8) -> list[TargetScore]:
    """NLL of each target given its prefix, in the pairs' order."""
    scores: list[TargetScore | None] = [None] * len(pairs)
    for i, logp in _target_logprob_batches(model, pairs, batch_size, pad_id):
        target = torch.tensor(list(pairs[i][1]), dtype=torch.long, device=logp.device)
        nll = -logp.gather(-1, target[:, None]).sum().item()
        scores[i] = TargetScore(nll_sum=float(nll), n_tokens=len(target))
    return [s for s in scores if s is not None]


def target_logprobs(model, pairs: Sequence[Pair], *, pad_id: int, batch_size: int = 8) -> list[torch.Tensor]:
    """Full next-token log-distributions at every target position (CPU tensors), pairs' order."""
    out: list[torch.Tensor | None] = [None] * len(pairs)
    for i, logp in _target_logprob_batches(model, pairs, batch_size, pad_id):
        out[i] = logp.cpu()
    return [t for t in out if t is not None]


def text_pairs(tokenizer, texts: Sequence[str]) -> list[Pair]:
    """Score a whole text: the first token is the context, every later token a target."""
    pairs: list[Pair] = []
    for n, text in enumerate(texts):
        ids = list(tokenizer(text)["input_ids"])
        if len(ids) < 2:
            raise ValueError(f"text {n} is too short to score ({len(ids)} tokens): {text[:40]!r}")
        pairs.append((ids[:1], ids[1:]))
    return pairs
