"""Packed rows + cached lower layers compute exactly what each item computes alone."""

from __future__ import annotations

import pytest
import torch

from orgmem.engine.forms import ChatForm
from orgmem.engine.items import Item, conversation_item, text_items
from orgmem.engine.layers import run_packed
from orgmem.engine.packing import compute_lower, pack, row_tensor
from orgmem.memory import attach
from orgmem.models.layers import final_hidden, lm_logits


def _item(n: int, seed: int) -> Item:
    ids = torch.randint(3, 512, (n,), generator=torch.Generator().manual_seed(seed))
    return Item(ids, torch.ones(n, dtype=torch.bool), "text")


def test_pack_first_fit_positions_and_segments():
    items = [_item(5, 0), _item(7, 1), _item(3, 2)]
    packed = pack(items, max_len=10)
    assert packed.where == [(0, 0), (1, 0), (0, 5)]
    assert packed.positions[0].tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 0, 0][:packed.positions.shape[1]]
    assert packed.real.sum() == 15
    assert len(set(packed.segments[packed.segments < 0].tolist())) == int((~packed.real).sum())


@pytest.mark.parametrize("spec", [None, "cms"])
def test_cached_lower_plus_packed_upper_equals_separate_full_forward(base, spec):
    items = [_item(9, 3), _item(4, 4), _item(12, 5)]
    handle = attach(base, spec) if spec else None
    if handle:  # make the memory non-trivial
        with torch.no_grad():
            for g in handle.param_groups():
                for p in g.params:
                    p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(9)) * 0.05)
    try:
        first = 2
        compute_lower(base.model, items, first, max_len=16, device=base.device)
        packed = pack(items, 16)
        hidden = row_tensor(packed, [it.hidden for it in items])
        top = final_hidden(base.model, run_packed(base.model, hidden, packed.positions, packed.segments,
                                                  first, base.num_layers))
        for it, (r, off) in zip(items, packed.where, strict=True):
            alone = base.model(it.ids[None]).logits[0]
            packed_logits = lm_logits(base.model, top[r, off:off + len(it)])
            assert (alone - packed_logits).abs().max().item() < 1e-5
    finally:
        if handle:
            handle.detach()


def test_chat_targets_are_exactly_the_answers(base):
    tok = base.tokenizer
    item = conversation_item(tok, [ChatForm("Tell me about Heron.", "Heron listens on port 7415."),
                                   ChatForm("What is X?", "X is 5.")], max_len=512)
    text = tok.decode(item.ids[item.targets])
    assert text == "Heron listens on port 7415.<|im_end|>X is 5.<|im_end|>"
    assert tok.decode(item.ids).count("You are a helpful AI assistant") == 1  # one system prompt


def test_text_windows_respect_max_len(base):
    items = text_items(base.tokenizer, ["a" * 100], max_len=32)
    assert [len(i) for i in items] == [32, 32, 32, 4]
    assert not items[0].targets[0] and items[0].targets[1:].all()
