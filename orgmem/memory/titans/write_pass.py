"""A night of Titans consolidation by writing: one forward pass of writes over the night's material.

Why not the engine's training loop: with ``epochs 1`` it still builds the training forms (question
turns, statements), packs rehearsal text into the same rows (generic chat would be written into
the org's memory) and runs every layer to the logits. A Titans memory learns by its forward pass
alone, so a night is: each chunk, in delivery order, in windows of ``window`` tokens (each its own
context, as a night's chunks are), through the base up to the last Titans layer, the memory in
write mode. No loss, no backpropagation, no optimizer.

With other components attached (``cms+titans``) they are switched off during the pass, so the
memory writes the base's own hidden states (what it was meta-trained on); the CMS levels then train
as usual with the Titans memory read-only (``TitansMemory.no_write``): Titans is the fast level,
CMS consolidates beneath it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

from orgmem.errors import OrgmemError
from orgmem.memory.titans.model import TitansMemory
from orgmem.models.layers import embed, run_layers
from orgmem.models.tokens import pad_token_id

logger = logging.getLogger(__name__)


def titans_components(handle) -> list[TitansMemory]:
    """The Titans components of an attached memory handle."""
    return [c for c in handle.components if isinstance(c, TitansMemory)]


def night_windows(tokenizer, chunks: Sequence[str], window: int) -> list[list[int]]:
    """Token rows of at most ``window`` tokens, chunk by chunk in order (prefix tokens first)."""
    prefix = list(tokenizer("", add_special_tokens=True)["input_ids"])
    step = window - len(prefix)
    if step < 1:
        raise OrgmemError(f"write window {window} leaves no room after {len(prefix)} prefix tokens")
    rows = []
    for chunk in chunks:
        ids = tokenizer(chunk, add_special_tokens=False)["input_ids"]
        rows += [prefix + ids[s: s + step] for s in range(0, len(ids), step)]
    return rows


@contextmanager
def _only(handle, keep: list[TitansMemory]) -> Iterator[None]:
    """Every component but ``keep`` switched off; ``keep`` in write mode."""
    others = [c for c in handle.components if all(c is not k for k in keep)]
    previous = [c.enabled for c in others]
    for c in others:
        c.set_enabled(False)
    for k in keep:
        k.train()
    try:
        yield
    finally:
        for k in keep:
            k.set_token_mask(None)
            k.eval()
        for c, was in zip(others, previous, strict=True):
            c.set_enabled(was)


@torch.no_grad()
def write_night(base, handle, chunks: Sequence[str], *, window: int = 512, batch: int = 8) -> dict:
    """Write the night's ``chunks`` into the handle's Titans memory; returns tokens and seconds."""
    memories = titans_components(handle)
    if not memories:
        raise OrgmemError(f"memory {handle.kind!r} has no titans component to write a night into")
    t0 = time.time()
    rows = night_windows(base.tokenizer, chunks, window)
    top = max(max(m.layers) for m in memories) + 1
    pad = pad_token_id(base.tokenizer)
    tokens = 0
    with _only(handle, memories):
        for s in range(0, len(rows), batch):
            part = rows[s: s + batch]
            width = max(len(r) for r in part)
            ids = torch.tensor([r + [pad] * (width - len(r)) for r in part], device=base.device)
            mask = torch.tensor([[True] * len(r) + [False] * (width - len(r)) for r in part],
                                device=base.device)
            for m in memories:
                m.set_token_mask(mask)
            run_layers(base.model, embed(base.model, ids), 0, top)  # rows are written in row order
            tokens += int(mask.sum())
        for m in memories:
            m.flush()
    seconds = time.time() - t0
    logger.info("titans night written", extra={"chunks": len(chunks), "tokens": tokens,
                                               "seconds": round(seconds, 2)})
    return {"chunks": len(chunks), "windows": len(rows), "tokens": tokens, "seconds": seconds}
