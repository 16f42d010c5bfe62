"""Context distillation: the teacher reads the chunk, its answer tokens are the student's, and the
auxiliary loss trains the memory toward the in-context base."""

from __future__ import annotations

import random

import torch

from orgmem.engine.config import ConsolidationConfig
from orgmem.engine.consolidation import consolidate
from orgmem.engine.distill import fill_teacher, teacher_rows
from orgmem.engine.forms import ChatForm
from orgmem.engine.items import build_items, conversation_item
from orgmem.memory import CmsConfig

CHUNK = "# Runbook: Heron\n\nHeron listens on port 7415. The cache lives in Redis database 3.\n"
CMS = CmsConfig(widths=[16, 8], periods=[1, 1], lrs=[1e-2, 1e-2])


def test_the_teacher_reads_the_chunk_and_answers_with_the_students_tokens(base):
    tok = base.tokenizer
    form = ChatForm("Which port does Heron listen on?", "Heron listens on port 7415.", CHUNK)
    item = conversation_item(tok, [form], 384, teacher=True)
    ids, targets = item.teacher
    assert "Redis database 3" in tok.decode(ids) and "Redis database 3" not in tok.decode(item.ids)
    assert torch.equal(ids[targets], item.ids[item.targets])
    assert conversation_item(tok, [form], 384).teacher is None, "no teacher unless asked"
    assert conversation_item(tok, [ChatForm(form.question, form.answer)], 384, teacher=True).teacher is None


def test_references_line_up_with_each_steps_targets(base):
    cfg = ConsolidationConfig(memory=CMS, context_distill=1.0, chat_turns=1, max_seq_len=384)
    items = build_items(base.tokenizer, [CHUNK], cfg, random.Random(0))
    chats = [it for it in items if it.kind == "chat"]
    assert chats and fill_teacher(base, items, k=8) == len(chats)
    for it in chats:
        assert it.teacher_idx.shape == (it.n_targets, 8) and it.teacher_rest.shape == (it.n_targets,)
    sel, idx, _, _ = teacher_rows(items)
    first_chat = next(i for i, it in enumerate(items) if it.kind == "chat")
    start = sum(it.n_targets for it in items[:first_chat])
    assert int(sel[0]) == start and len(sel) == len(idx) == sum(it.n_targets for it in chats)
    assert teacher_rows([it for it in items if it.kind != "chat"]) is None


def _last_distance(base, weight: float) -> float:
    """KL(teacher ‖ memory) on the answer tokens at the end of a night trained with ``weight``."""
    seen: list[float] = []
    cfg = ConsolidationConfig(memory=CMS, num_threads=1, context_distill=weight, chat_turns=1, epochs=12,
                              tokens_per_step=256, max_seq_len=256, text_forms=False, statement_forms=False)
    consolidate(base, None, [CHUNK], [], cfg, progress=False,
                on_step=lambda done, total, losses: seen.append(losses["cd"]))
    assert len(seen) >= 10
    return sum(seen[-3:]) / 3


def test_distillation_keeps_the_memory_near_the_in_context_teacher(base):
    """Cross-entropy alone pulls the answer tokens away from the teacher (on the random tiny base
    the teacher is nearly the bare base); the distillation term holds them near it."""
    assert _last_distance(base, 300.0) < 0.5 * _last_distance(base, 1e-9)
