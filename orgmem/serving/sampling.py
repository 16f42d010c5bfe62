"""Choosing the next token per request: greedy, temperature, nucleus (top_p), seeded.

Each request has its own ``torch.Generator`` so a ``seed`` reproduces a reply whatever else is in
the batch. Nucleus sampling looks at the 64 most likely tokens first and sorts the whole
vocabulary only when those do not reach ``top_p`` (exact either way, and ~50x cheaper usually).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import torch
from torch import Tensor

from orgmem.errors import OrgmemError

_TOPK_FIRST = 64
MAX_STOP_SEQUENCES = 4


@dataclass(frozen=True)
class SamplingParams:
    """What the OpenAI request asked for; ``temperature == 0`` means greedy."""

    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    min_tokens: int = 0  # end-of-turn is suppressed until this many tokens (vLLM's extension)

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise OrgmemError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if not 0 <= self.min_tokens <= self.max_tokens:
            raise OrgmemError(f"min_tokens must be between 0 and max_tokens ({self.max_tokens}), "
                              f"got {self.min_tokens}")
        if not 0.0 <= self.temperature <= 2.0:
            raise OrgmemError(f"temperature must be between 0 and 2, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise OrgmemError(f"top_p must be in (0, 1], got {self.top_p}")
        if len(self.stop) > MAX_STOP_SEQUENCES or any(not s for s in self.stop):
            raise OrgmemError(
                f"stop must be at most {MAX_STOP_SEQUENCES} non-empty strings, got {list(self.stop)}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


class Sampler:
    """The next-token rule of one request, with its own random stream."""

    def __init__(self, params: SamplingParams, device: torch.device | str = "cpu") -> None:
        self.params = params
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(params.seed if params.seed is not None else secrets.randbits(63))

    def __call__(self, logits: Tensor) -> int:
        """``logits`` (vocab,) -> token id."""
        p = self.params
        if p.greedy:
            return int(logits.argmax())
        probs = torch.softmax(logits.float() / p.temperature, dim=-1)
        if not bool(torch.isfinite(probs).all()):  # a temperature so small it overflows: its limit, greedy
            return int(logits.argmax())
        if p.top_p >= 1.0:
            return int(torch.multinomial(probs, 1, generator=self.generator))
        top, index = probs.topk(min(_TOPK_FIRST, probs.numel()))
        if float(top.sum()) < p.top_p and top.numel() < probs.numel():
            top, index = probs.sort(descending=True)
        keep = (top.cumsum(0) - top) < p.top_p  # the smallest prefix whose mass reaches top_p
        keep[0] = True  # a top_p below float32's resolution (found by the fuzzer) still keeps the top token
        top, index = top[keep], index[keep]
        choice = torch.multinomial(top / top.sum(), 1, generator=self.generator)
        return int(index[choice])


def sample_rows(logits: Tensor, samplers: list[Sampler]) -> list[int]:
    """Next token for every row of ``logits`` (rows, vocab); greedy rows share one argmax."""
    logits = logits.float()  # a bf16 base gives bf16 logits; sample in fp32
    greedy = logits.argmax(dim=-1).tolist() if any(s.params.greedy for s in samplers) else []
    return [greedy[i] if s.params.greedy else s(logits[i]) for i, s in enumerate(samplers)]
