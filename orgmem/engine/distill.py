"""Context distillation: the frozen base with the source chunk in its prompt teaches the memory.

Why (docs/knowledge_tuning.md, lever 5): the base answers about half of the night's questions when
the fact's chunk is pasted into the user turn, and its distribution over each answer token then
says how an answer *read from a document* continues — which neighbouring tokens are plausible and
which are not. The student is the same chat item without the chunk, trained with memory on; the
auxiliary loss is KL(teacher ‖ student) on the student's answer tokens (the gold answer is still
trained by cross-entropy, so the teacher's own mistakes are only a regulariser, not the target).

Reading order: the teacher's view of a conversation is built beside the student's
(``items.conversation_item``); ``fill_teacher`` computes its top-k reference per answer token once
per night with every memory off; ``teacher_rows`` lines the references up with a step's targets.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from orgmem.engine.items import Item
from orgmem.engine.layers import run_packed
from orgmem.engine.packing import pack, row_tensor
from orgmem.engine.rehearsal import log_rest
from orgmem.models.layers import embed, final_hidden, lm_logits


@torch.no_grad()
def fill_teacher(base, items: Sequence[Item], k: int, rows_per_call: int = 4) -> int:
    """Set ``teacher_idx/logp/rest`` on every item with a ``teacher`` sequence; returns how many.

    The teacher's answer tokens must be the student's, one for one (same answer text, same template
    around it); an item where they differ keeps no reference rather than a misaligned one.
    """
    todo = [it for it in items if it.teacher is not None and it.teacher_idx is None]
    model, device, filled = base.model, base.device, 0
    for start in range(0, len(todo), rows_per_call):
        group = todo[start:start + rows_per_call]
        views = [Item(ids, targets, "teacher") for it in group if it.teacher is not None
                 for ids, targets in (it.teacher,)]
        packed = pack(views, max(len(v) for v in views))
        ids = row_tensor(packed, [v.ids for v in views]).to(device)
        pos, seg = packed.positions.to(device), packed.segments.to(device)
        top = final_hidden(model, run_packed(model, embed(model, ids), pos, seg, 0, base.num_layers))
        for item, view, (r, off) in zip(group, views, packed.where, strict=True):
            t = view.targets.nonzero().squeeze(-1)
            if len(t) != item.n_targets or not torch.equal(view.ids[t], item.ids[item.targets]):
                item.teacher = None
                continue
            logp = torch.log_softmax(lm_logits(model, top[r, off + t - 1]).float(), dim=-1)
            vals, idx = logp.topk(k, dim=-1)
            item.teacher_idx, item.teacher_logp = idx.cpu(), vals.cpu()
            item.teacher_rest = log_rest(vals).cpu()
            filled += 1
    return filled


def teacher_rows(items: Sequence[Item]) -> tuple[Tensor, Tensor, Tensor, Tensor] | None:
    """Positions (in the step's ``_gather`` order of target tokens) that have a teacher, and the
    concatenated references; ``None`` when no item of the step has one."""
    offsets, chosen, idx, logp, rest = 0, [], [], [], []
    for item in items:
        n = item.n_targets
        if item.teacher_idx is not None and item.teacher_logp is not None and item.teacher_rest is not None:
            chosen.append(torch.arange(offsets, offsets + n))
            idx.append(item.teacher_idx)
            logp.append(item.teacher_logp)
            rest.append(item.teacher_rest)
        offsets += n
    if not chosen:
        return None
    return torch.cat(chosen), torch.cat(idx), torch.cat(logp), torch.cat(rest)
