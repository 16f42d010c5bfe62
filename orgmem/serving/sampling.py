"""Choosing the next token per request: logit bias, penalties, greedy or sampled, and logprobs.

Per step and batch row, in vLLM's order: ``logit_bias`` is added, then the penalties
(``repetition_penalty`` over prompt + generated tokens as in HF/vLLM, then ``frequency_penalty`` and
``presence_penalty`` over the generated tokens as in OpenAI), then the row is greedy (argmax) or
sampled: temperature, ``min_p``, ``top_k``, ``top_p``. Bias and penalties run vectorised over the
rows that ask for them (per-row coefficient tensors); a row that asks for nothing is not copied.

Each row has its own ``torch.Generator`` so a ``seed`` reproduces a reply whatever else is in the
batch; with ``n`` choices, choice ``j`` uses ``choice_seed(seed, j)`` (choice 0: the seed itself).
Nucleus and top-k sampling look at the 64 most likely tokens first, then 4096, and sort the whole
vocabulary only when those do not suffice (exact either way, and ~50x cheaper usually); a token is
drawn by inverse CDF of one uniform from the row's generator.

Logprobs are the model's raw ones (log-softmax of the logits before bias, penalties, temperature or
any mask), vLLM's default (``logprobs_mode=raw_logprobs``) and what OpenAI reports.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import torch
from torch import Tensor

from orgmem.errors import OrgmemError

_TOPK_FIRST = 64
_TOPK_WIDER = 4096
MAX_STOP_SEQUENCES = 4
MAX_LOGPROBS = 20  # top alternatives per token (OpenAI's top_logprobs limit; vLLM's default max_logprobs)
LOGIT_BIAS_LIMIT = 100.0


class SamplingError(OrgmemError):
    """A sampling parameter out of range; ``param`` names it (the API's 400 names it too)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class SamplingParams:
    """What the OpenAI request asked for; ``temperature == 0`` means greedy."""

    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    min_tokens: int = 0  # end-of-turn is suppressed until this many tokens (vLLM's extension)
    top_k: int = 0  # 0: off (vLLM's -1 is mapped to 0 by the API)
    min_p: float = 0.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, bias)
    logprobs: int | None = None  # None: none; k: the sampled token's logprob and the k most likely
    prompt_logprobs: int | None = None  # the same for every prompt token (completions' echo)

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise SamplingError("max_tokens", f"max_tokens must be >= 1, got {self.max_tokens}")
        if not 0 <= self.min_tokens <= self.max_tokens:
            raise SamplingError("min_tokens", "min_tokens must be between 0 and max_tokens "
                                f"({self.max_tokens}), "
                              f"got {self.min_tokens}")
        if not 0.0 <= self.temperature <= 2.0:
            raise SamplingError("temperature", f"temperature must be between 0 and 2, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise SamplingError("top_p", f"top_p must be in (0, 1], got {self.top_p}")
        if len(self.stop) > MAX_STOP_SEQUENCES or any(not s for s in self.stop):
            raise SamplingError(
                "stop", f"stop must be at most {MAX_STOP_SEQUENCES} non-empty strings, got {list(self.stop)}")
        self._check_processing()

    def _check_processing(self) -> None:
        if self.top_k < 0:
            raise SamplingError("top_k", f"top_k must be >= 0 (0 or -1: off), got {self.top_k}")
        if not 0.0 <= self.min_p <= 1.0:
            raise SamplingError("min_p", f"min_p must be between 0 and 1, got {self.min_p}")
        for name in ("presence_penalty", "frequency_penalty"):
            if not -2.0 <= getattr(self, name) <= 2.0:
                raise SamplingError(name, f"{name} must be between -2 and 2, got {getattr(self, name)}")
        if not self.repetition_penalty > 0.0:
            raise SamplingError("repetition_penalty",
                                f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        if any(not -LOGIT_BIAS_LIMIT <= bias <= LOGIT_BIAS_LIMIT for _, bias in self.logit_bias):
            raise SamplingError("logit_bias", "logit_bias values must be between -100 and 100, got "
                                f"{dict(self.logit_bias)}")
        for name in ("logprobs", "prompt_logprobs"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= MAX_LOGPROBS:
                raise SamplingError(name, f"{name} must be between 0 and {MAX_LOGPROBS}, got {value}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    @property
    def penalized(self) -> bool:
        return bool(self.presence_penalty or self.frequency_penalty or self.repetition_penalty != 1.0)


def choice_seed(seed: int, choice: int) -> int:
    """The seed of choice ``choice`` of a seeded request with ``n`` choices: distinct per choice,
    the same on every run; choice 0 keeps ``seed``, so ``n=1`` replies are unchanged."""
    if choice == 0:
        return seed
    digest = hashlib.sha256(f"{seed}:{choice}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass
class _PenaltyCounts:
    """A penalised row's token counts: generated (``counts``) and prompt or generated (``seen``)."""

    counts: Tensor  # (vocab,) float32
    seen: Tensor  # (vocab,) bool

    @classmethod
    def of(cls, prompt_ids: list[int], vocab: int, device: torch.device | str) -> _PenaltyCounts:
        seen = torch.zeros(vocab, dtype=torch.bool, device=device)
        if prompt_ids:
            seen[torch.tensor(prompt_ids, dtype=torch.long, device=device)] = True
        return cls(torch.zeros(vocab, dtype=torch.float32, device=device), seen)


class Sampler:
    """The next-token rule of one row, with its own random stream and its penalty counts."""

    def __init__(self, params: SamplingParams, device: torch.device | str = "cpu", *,
                 seed: int | None = None, prompt_ids: list[int] | None = None, vocab: int = 0) -> None:
        """``seed``: this row's seed (default ``params.seed``); ``prompt_ids`` and ``vocab`` are
        needed only with penalties (repetition counts the prompt) or a logit bias."""
        self.params = params
        self.generator = torch.Generator(device=device)
        seed = params.seed if seed is None else seed
        self.generator.manual_seed(seed if seed is not None else secrets.randbits(63))
        self.penalty: _PenaltyCounts | None = None
        if params.penalized:
            self.penalty = _PenaltyCounts.of(prompt_ids or [], vocab, device)
        self.bias: tuple[Tensor, Tensor] | None = None
        if params.logit_bias:
            ids, values = zip(*params.logit_bias, strict=True)
            self.bias = (torch.tensor(ids, dtype=torch.long, device=device),
                         torch.tensor(values, dtype=torch.float32, device=device))

    def observe(self, token: int) -> None:
        """Count a generated token (frequency, presence and repetition penalties)."""
        if self.penalty is not None:
            self.penalty.counts[token] += 1
            self.penalty.seen[token] = True

    def __call__(self, logits: Tensor) -> int:
        """``logits`` (vocab,), already biased and penalised -> token id."""
        p = self.params
        if p.greedy:
            return int(logits.argmax())
        probs = torch.softmax(logits.float() / p.temperature, dim=-1)
        if not bool(torch.isfinite(probs.sum())):  # a temperature so small it overflows: its limit, greedy
            return int(logits.argmax())
        if p.min_p > 0.0:  # tokens below min_p x the top token's probability are out
            probs = probs.masked_fill(probs < p.min_p * probs.max(), 0.0)
        if p.top_p >= 1.0 and not 0 < p.top_k < probs.numel():
            return self._draw(probs)
        top, index = self._candidates(probs)
        return int(index[self._draw(top)])

    def _draw(self, weights: Tensor) -> int:
        """An index drawn with probability proportional to ``weights`` (inverse CDF of one uniform:
        exact, and ~50x cheaper than ``torch.multinomial`` over a 49k vocabulary on a CPU)."""
        cdf = weights.cumsum(0)
        u = torch.rand((), generator=self.generator, device=weights.device) * cdf[-1]
        return min(int(torch.searchsorted(cdf, u[None], right=True)), weights.numel() - 1)

    def _candidates(self, probs: Tensor) -> tuple[Tensor, Tensor]:
        """The top-k tokens (all when top_k is off), cut to the nucleus of ``top_p`` of their mass.
        Widens 64 -> 4096 -> k only while the candidates hold less than ``top_p`` of the mass."""
        p = self.params
        vocab = probs.numel()
        k = p.top_k if 0 < p.top_k < vocab else vocab
        top, index = probs.topk(min(k, _TOPK_FIRST))
        if p.top_p >= 1.0:
            return probs.topk(k) if k > top.numel() else (top, index)
        mass = top.sum() if k == top.numel() else (probs.sum() if k == vocab else probs.topk(k)[0].sum())
        for width in (_TOPK_WIDER, k):
            if float(top.sum()) >= p.top_p * float(mass) or top.numel() >= k:
                break
            top, index = probs.topk(min(width, k))
        keep = (top.cumsum(0) - top) < p.top_p * mass  # the smallest prefix whose mass reaches top_p
        keep[0] = True  # a top_p below float32's resolution (found by the fuzzer) still keeps the top token
        return top[keep], index[keep]


def apply_penalties(logits: Tensor, counts: Tensor, seen: Tensor, presence: Tensor, frequency: Tensor,
                    repetition: Tensor) -> Tensor:
    """Penalised logits of rows ``logits`` (rows, vocab), vLLM's formulas.

    ``repetition`` (rows,): HF's ``RepetitionPenaltyLogitsProcessor`` over ``seen`` (prompt and
    generated tokens): a positive logit is divided by it, a negative one multiplied. Then OpenAI's
    ``logit - frequency * count - presence * (count > 0)`` over ``counts`` (generated tokens only).
    """
    rep = repetition[:, None]
    logits = torch.where(seen, torch.where(logits > 0, logits / rep, logits * rep), logits)
    return logits - frequency[:, None] * counts - presence[:, None] * (counts > 0).to(logits.dtype)


def process_rows(logits: Tensor, samplers: list[Sampler]) -> Tensor:
    """Logit bias, then penalties, for the rows that ask for them; ``logits`` itself when none does."""
    biased = [(i, s.bias) for i, s in enumerate(samplers) if s.bias is not None]
    penalized = [(i, s.params, s.penalty) for i, s in enumerate(samplers) if s.penalty is not None]
    if not biased and not penalized:
        return logits
    logits = logits.float().clone()
    if biased:
        rows = torch.cat([torch.full_like(ids, i) for i, (ids, _) in biased])
        logits.index_put_((rows, torch.cat([ids for _, (ids, _) in biased])),
                          torch.cat([values for _, (_, values) in biased]), accumulate=True)
    if penalized:
        index = torch.tensor([i for i, _, _ in penalized], dtype=torch.long, device=logits.device)

        def per_row(name: str) -> Tensor:
            return torch.tensor([getattr(p, name) for _, p, _ in penalized], dtype=logits.dtype,
                                device=logits.device)

        out = apply_penalties(logits.index_select(0, index), torch.stack([c.counts for _, _, c in penalized]),
                              torch.stack([c.seen for _, _, c in penalized]), per_row("presence_penalty"),
                              per_row("frequency_penalty"), per_row("repetition_penalty"))
        logits.index_copy_(0, index, out)
    return logits


def sample_rows(logits: Tensor, samplers: list[Sampler]) -> list[int]:
    """Next token for every row of ``logits`` (rows, vocab); greedy rows share one argmax."""
    logits = logits.float()  # a bf16 base gives bf16 logits; sample in fp32
    greedy = logits.argmax(dim=-1).tolist() if any(s.params.greedy for s in samplers) else []
    return [greedy[i] if s.params.greedy else s(logits[i]) for i, s in enumerate(samplers)]


@dataclass(frozen=True)
class TokenLogprob:
    """One token's raw logprob and the ``k`` most likely tokens at its position (id, logprob)."""

    token: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()


def token_logprobs(raw: Tensor, tokens: list[int], ks: list[int]) -> list[TokenLogprob]:
    """For rows ``raw`` (rows, vocab) of model logits: each row's ``tokens[i]`` and its top ``ks[i]``."""
    logp = torch.log_softmax(raw.float(), dim=-1)
    chosen = logp.gather(1, torch.tensor(tokens, dtype=torch.long, device=raw.device)[:, None])[:, 0].tolist()
    k = min(max(ks, default=0), logp.shape[-1])
    values, index = logp.topk(k) if k else (logp[:, :0], logp[:, :0].long())
    values_l, index_l = values.tolist(), index.tolist()
    return [TokenLogprob(t, lp, tuple(zip(index_l[i][:ks[i]], values_l[i][:ks[i]], strict=True)))
            for i, (t, lp) in enumerate(zip(tokens, chosen, strict=True))]


def prompt_logprobs(logits: Tensor, prompt_ids: list[int], k: int) -> tuple[TokenLogprob | None, ...]:
    """Logprob of each prompt token given the ones before it (``logits`` (len, vocab) of the prompt's
    positions); the first token has none (None), as in OpenAI's echo."""
    if len(prompt_ids) < 2:
        return (None,)
    entries = token_logprobs(logits[:-1], prompt_ids[1:], [k] * (len(prompt_ids) - 1))
    return (None, *entries)
