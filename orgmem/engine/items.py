"""Training items: token sequences with a target mask, built from chunks in three forms.

- ``text``: windows of a chunk's tokens (loss on every token) — the document as written.
- ``statement``: each derived statement alone (loss on every token) — what cloze recall needs.
- ``chat``: derived question → statement turns in the chat template, several per conversation
  (loss on the assistant turns only) — what question answering needs (``docs/knowledge_tuning.md``).

Target ``t`` means "token t is predicted from tokens < t"; the loss reads logits at ``t - 1``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from orgmem.engine.forms import ChatForm, chat_forms, statements


@dataclass
class Item:
    """One sequence to train on; ``hidden`` is filled with the lower layers' output once."""

    ids: Tensor  # (n,) long
    targets: Tensor  # (n,) bool
    kind: str
    hidden: Tensor | None = None

    def lower_hidden(self) -> Tensor:
        """``hidden``, which training fills for every item before its first step."""
        if self.hidden is None:
            raise RuntimeError("an item reached a training step before its lower layers were computed")
        return self.hidden
    # Context distillation (distill.py): the teacher's view (ids, targets) and its top-k reference
    # per target token (n_targets, k), (n_targets, k), (n_targets,).
    teacher: tuple[Tensor, Tensor] | None = None
    teacher_idx: Tensor | None = None
    teacher_logp: Tensor | None = None
    teacher_rest: Tensor | None = None

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def n_targets(self) -> int:
        return int(self.targets.sum())


def _encode(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def text_items(tokenizer, chunks: Sequence[str], max_len: int) -> list[Item]:
    """Each chunk's tokens cut into windows of at most ``max_len``."""
    items = []
    for chunk in chunks:
        if not chunk.strip():
            continue
        ids = _encode(tokenizer, chunk)
        for start in range(0, len(ids), max_len):
            window = torch.tensor(ids[start:start + max_len], dtype=torch.long)
            if len(window) >= 2:
                targets = torch.ones(len(window), dtype=torch.bool)
                targets[0] = False
                items.append(Item(window, targets, "text"))
    return items


def statement_items(tokenizer, chunks: Sequence[str], max_len: int) -> list[Item]:
    items = []
    for text in statements(chunks):
        ids = torch.tensor(_encode(tokenizer, text)[:max_len], dtype=torch.long)
        if len(ids) >= 2:
            targets = torch.ones(len(ids), dtype=torch.bool)
            targets[0] = False
            items.append(Item(ids, targets, "statement"))
    return items


#: The teacher's user turn in context distillation: the chunk, then the question (the shape of the
#: oracle-chunk baseline, in which the base answers about half of the questions).
CONTEXT_TURN = "{context}\n\n{question}"


def conversation_item(tokenizer, turns: Sequence[ChatForm], max_len: int,
                      teacher: bool = False) -> Item | None:
    """Render Q/A turns with the chat template; targets = each answer plus its end-of-turn marker.

    ``teacher``: also render the teacher's view, each question preceded by its form's chunk."""
    item = _render(tokenizer, [(f.question, f.answer) for f in turns], max_len)
    if item is not None and teacher and all(f.context.strip() for f in turns):
        view = _render(tokenizer, [(CONTEXT_TURN.format(context=f.context.strip(), question=f.question),
                                    f.answer) for f in turns], None)
        item.teacher = (view.ids, view.targets) if view is not None else None
    return item


def _render(tokenizer, turns: Sequence[tuple[str, str]], max_len: int | None) -> Item | None:
    messages: list[dict[str, str]] = []
    spans: list[tuple[int, int]] = []
    for question, answer in turns:
        messages.append({"role": "user", "content": question})
        prefix = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        messages.append({"role": "assistant", "content": answer})
        full = tokenizer.apply_chat_template(messages, tokenize=False)
        end = full.find(answer, len(prefix)) + len(answer)
        end_of_turn = full.find(tokenizer.eos_token, end) if tokenizer.eos_token else -1
        spans.append((len(prefix), end_of_turn + len(tokenizer.eos_token) if end_of_turn >= 0 else end))
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids = torch.tensor(enc["input_ids"], dtype=torch.long)
    targets = torch.zeros(len(ids), dtype=torch.bool)
    for t, (a, b) in enumerate(enc["offset_mapping"]):
        if t > 0 and b > a and any(s <= a and b <= e for s, e in spans):
            targets[t] = True
    if max_len is not None and len(ids) > max_len:
        ids, targets = ids[:max_len], targets[:max_len]
    return Item(ids, targets, "chat") if targets.any() else None


def chat_items(tokenizer, chunks: Sequence[str], max_len: int, turns: int, per_statement: int,  # noqa: PLR0913  # the chat form's shape knobs, each a config field
               rng: random.Random, asked: Mapping[str, str] | None = None,
               value_answers: bool = True, teacher: bool = False) -> list[Item]:
    """Derived Q/A forms, shuffled then grouped ``turns`` per conversation."""
    forms = chat_forms(chunks, per_statement, asked, value_answers)
    rng.shuffle(forms)
    items = []
    for start in range(0, len(forms), max(1, turns)):
        item = conversation_item(tokenizer, forms[start:start + max(1, turns)], max_len, teacher)
        if item is not None:
            items.append(item)
    return items


def build_items(tokenizer, chunks: Sequence[str], config, rng: random.Random,
                asked: Mapping[str, str] | None = None) -> list[Item]:
    """All enabled forms of ``chunks`` (the order is deterministic given ``rng``); ``asked``: the
    base model's questions per chat answer (``asked.py``)."""
    items: list[Item] = []
    if config.text_forms:
        items += text_items(tokenizer, chunks, config.max_seq_len)
    if config.statement_forms:
        items += statement_items(tokenizer, chunks, config.max_seq_len)
    if config.chat_forms:
        items += chat_items(tokenizer, chunks, config.max_seq_len, config.chat_turns,
                            config.questions_per_statement, rng, asked, config.value_answers,
                            teacher=config.context_distill > 0)
    return items
