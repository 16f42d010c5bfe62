"""Off-topic text for the outer loss: generic chat and plain text, read with a written memory attached.

Why: the first GPU meta-training learned a gate that opens whenever memory is read (KL 0.37 and 19
of 20 generic replies changed after a night, ``docs/gpu_session.md``). Scoring KL(base || memory)
on text that has nothing to do with the episode teaches the gate to stay shut off-topic.

The text is the base's own: its greedy replies to the shipped rehearsal prompts
(``orgmem/data/generic_prompts.json``, the same list CMS rehearses; the evaluation's prompts are a
separate file), once through the chat template (chat) and once as bare text (plain text).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

import torch
from torch import Tensor

from orgmem.models.layers import embed, run_layers
from orgmem.models.tokens import encode_chat, pad_token_id, stop_token_ids


@dataclass
class GenericBank:
    """Right-padded generic texts with the hidden states entering ``layer`` cached."""

    layer: int
    ids: Tensor  # (g, l)
    mask: Tensor  # (g, l) bool: real tokens (all scored)
    hidden: Tensor  # (g, l, d)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def rows(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        """(hidden, mask) of items ``idx``, cut to their longest."""
        n = int(self.mask[idx].sum(1).max())
        return self.hidden[idx, :n], self.mask[idx, :n]


def rehearsal_prompts() -> list[str]:
    raw = resources.files("orgmem").joinpath("data/generic_prompts.json").read_text()
    return list(json.loads(raw)["prompts"])


@torch.no_grad()
def _reply(base, prompt: str, max_new_tokens: int) -> str:
    ids = torch.tensor([encode_chat(base.tokenizer, prompt)], device=base.device)
    out = base.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                              do_sample=False, pad_token_id=pad_token_id(base.tokenizer),
                              eos_token_id=sorted(stop_token_ids(base.tokenizer, base.model)))
    return str(base.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)).strip()


@torch.no_grad()
def build_generic(base, layer: int, count: int = 32, *, reply_tokens: int = 48, max_tokens: int = 96
                  ) -> GenericBank:
    """``count`` generic items (alternately chat and plain text). Call with every memory off: the
    replies must be the base's own."""
    tok = base.tokenizer
    prompts = rehearsal_prompts()
    rows: list[list[int]] = []
    for i in range(count):
        prompt = prompts[(i // 2) % len(prompts)]
        reply = _reply(base, prompt, reply_tokens) or prompt
        if i % 2 == 0:
            ids = encode_chat(tok, prompt) + tok(reply, add_special_tokens=False)["input_ids"]
        else:
            ids = tok(f"{prompt}\n\n{reply}", add_special_tokens=True)["input_ids"]
        rows.append(list(ids)[:max_tokens])
    width = max(len(r) for r in rows)
    pad = pad_token_id(tok)
    ids_t = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=base.device)
    mask = torch.tensor([[True] * len(r) + [False] * (width - len(r)) for r in rows], device=base.device)
    hidden = run_layers(base.model, embed(base.model, ids_t), 0, layer)
    return GenericBank(layer, ids_t, mask, hidden)
