"""Self-rehearsal: cached base replies and reference, and the top-k KL estimate."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from orgmem.engine.rehearsal import generic_prompts, rehearsal_set, rehearsal_texts, topk_kl
from orgmem.models import load_base


def test_topk_kl_matches_full_kl_when_k_is_the_vocab_and_bounds_it_below():
    g = torch.Generator().manual_seed(0)
    p_logits, q_logits = torch.randn(6, 50, generator=g) * 3, torch.randn(6, 50, generator=g) * 3
    logp, logq = F.log_softmax(p_logits, -1), F.log_softmax(q_logits, -1)
    full = (logp.exp() * (logp - logq)).sum(-1).mean()
    vals, idx = logp.topk(50, -1)
    rest = torch.full((6,), -1e9)
    assert topk_kl(q_logits, idx, vals, rest).item() == pytest.approx(full.item(), rel=1e-4)
    vals, idx = logp.topk(5, -1)
    from orgmem.engine.rehearsal import log_rest

    approx = topk_kl(q_logits, idx, vals, log_rest(vals)).item()
    assert 0 <= approx <= full.item() + 1e-6
    assert topk_kl(p_logits, idx, vals, log_rest(vals)).item() == pytest.approx(0.0, abs=1e-5)


def test_rehearsal_is_generated_once_and_reference_is_the_base():
    base = load_base("tiny-random")
    pairs = rehearsal_texts(base)
    assert [p for p, _ in pairs] == generic_prompts() and len(pairs) >= 20
    cache = json.loads((base.cache_dir / "rehearsal.json").read_text())
    assert cache["fingerprint"] == base.fingerprint
    items = rehearsal_set(base, first_layer=2, k=8, max_len=256)
    item = items[0]
    logits = base.model(item.ids[None]).logits[0, :-1][item.targets[1:]]
    assert topk_kl(logits, item.ref_idx, item.ref_logp, item.ref_rest).item() == pytest.approx(0, abs=1e-5)
    assert item.hidden.shape == (len(item), base.model.config.hidden_size)
