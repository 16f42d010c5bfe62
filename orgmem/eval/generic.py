"""The shipped generic evaluation set, and the drift metrics measured on it.

Generic text (for perplexity) and generic chat prompts (for KL to base, changed replies and
leakage) ship inside the package (``orgmem/data/eval/``) so every evaluation on every machine
measures drift on the same, fixed material — and none of it is what the engine trains on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import torch

from orgmem.errors import NotFoundError

DATA_PACKAGE = "orgmem.data"
GENERIC_TEXT = "eval/generic_text.json"
GENERIC_PROMPTS = "eval/generic_prompts.json"


def _read_json(name: str) -> dict:
    ref = resources.files(DATA_PACKAGE).joinpath(name)
    if not ref.is_file():
        raise NotFoundError(f"packaged evaluation data missing: orgmem/data/{name}")
    return json.loads(ref.read_text(encoding="utf-8"))


@cache
def generic_texts() -> tuple[str, ...]:
    """Original generic English paragraphs (perplexity)."""
    return tuple(_read_json(GENERIC_TEXT)["paragraphs"])


@cache
def generic_prompts() -> tuple[str, ...]:
    """Generic chat prompts (KL to base, changed replies, leakage)."""
    return tuple(_read_json(GENERIC_PROMPTS)["prompts"])


def perplexity(nll_sum: float, n_tokens: int) -> float:
    return math.exp(nll_sum / n_tokens) if n_tokens else float("nan")


@dataclass(frozen=True)
class TopK:
    """A next-token distribution kept as its k most likely tokens plus the mass of the rest.

    Keeping full 49k-way distributions for every reply position of the base would cost ~100 MB
    per base; the top-k summary is ~1 MB and the KL computed on it (the tail merged into one
    bucket) is a lower bound of the exact KL that is tight when the top-k hold almost all mass.
    """

    ids: torch.Tensor  # [positions, k] long
    logp: torch.Tensor  # [positions, k] float
    rest_logp: torch.Tensor  # [positions] float: log of the probability outside the top k


def summarise_topk(logp: torch.Tensor, k: int) -> TopK:
    """Top-k summary of [positions, vocab] log-probabilities."""
    k = min(k, logp.shape[-1])
    values, ids = logp.topk(k, dim=-1)
    rest = _log1mexp(torch.logsumexp(values, dim=-1))
    return TopK(ids=ids, logp=values, rest_logp=rest)


def _log1mexp(log_mass: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x <= 0, clamped so an all-covering top-k gives a tiny, finite rest."""
    mass = log_mass.double().exp().clamp(max=1.0 - 1e-12)  # in double: 1 - 1e-12 rounds to 1 in fp32
    return torch.log1p(-mass).float()


def bucketed_kl(base: TopK, adapted_logp: torch.Tensor) -> torch.Tensor:
    """Per-position KL(base ‖ adapted) over the base's top-k tokens plus one tail bucket."""
    a_top = adapted_logp.gather(-1, base.ids)
    a_rest = _log1mexp(torch.logsumexp(a_top, dim=-1))
    top = (base.logp.exp() * (base.logp - a_top)).sum(-1)
    tail = base.rest_logp.exp() * (base.rest_logp - a_rest)
    return (top + tail).clamp(min=0.0)


def leaked_strings(reply: str, base_reply: str, prompt: str, candidates: Sequence[str]) -> list[str]:
    """Org strings the adapted reply states that neither the base reply nor the prompt contained."""
    from orgmem.eval.probes import contains_answer

    return [c for c in candidates if contains_answer(reply, [c])
            and not contains_answer(base_reply, [c]) and not contains_answer(prompt, [c])]
