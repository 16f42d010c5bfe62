"""Self-synthesised rehearsal: the base's own replies to generic prompts, plus its reference.

Why: a KL(base‖adapted) term on generic chat text *sampled from the base itself* removes drift and
leakage without costing recall (``docs/knowledge_tuning.md``, starting point); it needs no data set.
The replies are generated once per base (greedy, cached in ``<base.cache_dir>/rehearsal.json``),
and the base's reference distribution (top-k log-probs) plus the lower layers' hidden states are computed once
per (base, first memory layer) and cached beside it, so a consolidation never runs the base twice.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor

from orgmem.engine.items import Item
from orgmem.engine.layers import run_packed
from orgmem.engine.packing import pack, row_tensor
from orgmem.models.layers import embed, final_hidden, lm_logits

logger = logging.getLogger(__name__)

MAX_NEW_TOKENS = 80


def generic_prompts() -> list[str]:
    """The shipped prompt list (``orgmem/data/generic_prompts.json``)."""
    raw = resources.files("orgmem").joinpath("data/generic_prompts.json").read_text()
    return list(json.loads(raw)["prompts"])


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


@torch.no_grad()
def _generate(base, prompts: list[str], max_new_tokens: int, batch_size: int = 16) -> list[str]:
    tok = base.tokenizer
    old_side, tok.padding_side = tok.padding_side, "left"
    replies = []
    try:
        for start in range(0, len(prompts), batch_size):
            texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                             add_generation_prompt=True)
                     for p in prompts[start:start + batch_size]]
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(base.device)
            out = base.model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                      pad_token_id=tok.pad_token_id)
            for row in out[:, enc["input_ids"].shape[1]:]:
                replies.append(tok.decode(row, skip_special_tokens=True).strip())
    finally:
        tok.padding_side = old_side
    return replies


def rehearsal_texts(base, max_new_tokens: int = MAX_NEW_TOKENS) -> list[tuple[str, str]]:
    """(prompt, base reply) pairs, generated once per base and cached."""
    path = Path(base.cache_dir) / "rehearsal.json"
    prompts = generic_prompts()
    if path.exists():
        data = json.loads(path.read_text())
        if data.get("fingerprint") == base.fingerprint and data.get("prompts") == prompts:
            return list(zip(data["prompts"], data["replies"], strict=True))
    t0 = time.time()
    # stderr, never stdout: commands with --json print only their JSON there.
    print(f"[orgmem] generating rehearsal text with base {base.name} (once per base)...", file=sys.stderr,
          flush=True)
    replies = _generate(base, prompts, max_new_tokens)
    payload = {"fingerprint": base.fingerprint, "prompts": prompts, "replies": replies,
               "max_new_tokens": max_new_tokens}
    _atomic_write(path, json.dumps(payload, indent=1).encode())
    logger.info("rehearsal text generated", extra={"base": base.name, "seconds": round(time.time() - t0, 1)})
    return list(zip(prompts, replies, strict=True))


@dataclass
class RehearsalItem(Item):
    """An item whose targets are scored by KL against the base's top-k distribution."""

    ref_idx: Tensor | None = None  # (n_targets, k) long
    ref_logp: Tensor | None = None  # (n_targets, k) float
    ref_rest: Tensor | None = None  # (n_targets,) float: log of the mass outside the top k

    def reference(self) -> tuple[Tensor, Tensor, Tensor]:
        """(top-k ids, their log-probabilities, log of the rest), filled when the set is built."""
        if self.ref_idx is None or self.ref_logp is None or self.ref_rest is None:
            raise RuntimeError("a rehearsal item reached a training step without its reference")
        return self.ref_idx, self.ref_logp, self.ref_rest


def _rehearsal_items(base, max_len: int) -> list[RehearsalItem]:
    tok = base.tokenizer
    items = []
    for prompt, reply in rehearsal_texts(base):
        text = tok.apply_chat_template([{"role": "user", "content": prompt},
                                        {"role": "assistant", "content": reply}], tokenize=False)
        ids = torch.tensor(tok(text, add_special_tokens=False)["input_ids"][:max_len], dtype=torch.long)
        targets = torch.ones(len(ids), dtype=torch.bool)
        targets[0] = False
        items.append(RehearsalItem(ids, targets, "rehearsal"))
    return items


def log_rest(logp_topk: Tensor) -> Tensor:
    """log(1 - sum(exp(logp_topk))) computed stably."""
    return torch.log1p(-logp_topk.exp().sum(-1).clamp(max=1 - 1e-6))


@torch.no_grad()
def _fill_reference(base, items: list[RehearsalItem], first_layer: int, k: int, max_len: int) -> None:
    model = base.model
    packed = pack(items, max_len)
    ids = row_tensor(packed, [it.ids for it in items]).to(base.device)
    pos, seg = packed.positions.to(base.device), packed.segments.to(base.device)
    lower = run_packed(model, embed(model, ids), pos, seg, 0, first_layer)
    top = final_hidden(model, run_packed(model, lower, pos, seg, first_layer, base.num_layers))
    for it, (r, off) in zip(items, packed.where, strict=True):
        it.hidden = lower[r, off:off + len(it)].float().cpu().clone()
        logits = lm_logits(model, top[r, off:off + len(it) - 1]).float()
        logp = F.log_softmax(logits, dim=-1)[it.targets[1:].to(logits.device)]
        vals, idx = logp.topk(k, dim=-1)
        it.ref_idx, it.ref_logp, it.ref_rest = idx.cpu(), vals.cpu(), log_rest(vals).cpu()


_MEMO: dict[tuple, list[RehearsalItem]] = {}


def rehearsal_set(base, first_layer: int, k: int, max_len: int) -> list[RehearsalItem]:
    """Rehearsal items with lower hidden states and base reference, cached in memory and on disk."""
    key = (base.fingerprint, str(base.device), str(base.dtype), first_layer, k, max_len)
    if key in _MEMO:
        return _MEMO[key]
    items = _rehearsal_items(base, max_len)
    path = Path(base.cache_dir) / f"rehearsal_ref_L{first_layer}_k{k}_n{max_len}_{base.dtype}.safetensors"
    if path.exists():
        data = load_file(str(path))
        if len(items) and all(f"ids.{i}" in data and torch.equal(data[f"ids.{i}"], it.ids)
                              for i, it in enumerate(items)):
            for i, it in enumerate(items):
                it.hidden, it.ref_idx = data[f"hidden.{i}"].to(base.dtype), data[f"idx.{i}"]
                it.ref_logp, it.ref_rest = data[f"logp.{i}"], data[f"rest.{i}"]
            _MEMO[key] = items
            return items
    _fill_reference(base, items, first_layer, k, max_len)
    tensors = {}
    for i, it in enumerate(items):
        ref_idx, ref_logp, ref_rest = it.reference()
        tensors.update({f"ids.{i}": it.ids, f"hidden.{i}": it.lower_hidden().float(), f"idx.{i}": ref_idx,
                        f"logp.{i}": ref_logp, f"rest.{i}": ref_rest})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    save_file({k2: v.contiguous() for k2, v in tensors.items()}, str(tmp))
    tmp.replace(path)
    _MEMO[key] = items
    return items


def topk_kl(logits: Tensor, ref_idx: Tensor, ref_logp: Tensor, ref_rest: Tensor,
            reduction: str = "mean") -> Tensor:
    """Mean (or ``reduction="sum"``: sum) of KL(base‖adapted) over positions, on the base's top-k
    tokens plus one "rest" bucket.

    Coarsening both distributions the same way gives a lower bound of the full KL that captures
    nearly all of it for peaked chat distributions, while the reference costs k numbers per token.
    """
    logq = F.log_softmax(logits.float(), dim=-1)
    q_top = logq.gather(-1, ref_idx)
    q_rest = log_rest(q_top)
    p_top = ref_logp.exp()
    kl = (p_top * (ref_logp - q_top)).sum(-1) + ref_rest.exp() * (ref_rest - q_rest)
    return kl.sum() if reduction == "sum" else kl.mean()
