"""A base's special tokens and prompt shape: chat encoding, stop ids, pad id.

Why here: evaluation, training and serving all ask the base the same way and stop where it stops;
one definition keeps an answer scored in evaluation the answer the server gives.
"""

from __future__ import annotations

from collections.abc import Sequence

PLAIN_CHATML_TURN = "<|im_start|>{role}\n{content}<|im_end|>\n"
PLAIN_CHATML_REPLY = "<|im_start|>assistant\n"
END_OF_TURN_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>")


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def encode_chat(tokenizer, messages: str | Sequence[dict[str, str]]) -> list[int]:
    """Prompt ids of a conversation (a string is one user turn), ending where the assistant speaks.

    Uses the tokenizer's chat template (SmolLM2: ChatML with its default system prompt); a
    tokenizer without one (test bases) gets plain ChatML so every base is asked the same way.
    The server refuses chat on such a base instead (``orgmem.serving.generation``).
    """
    turns = [{"role": "user", "content": messages}] if isinstance(messages, str) else list(messages)
    if has_chat_template(tokenizer):
        text = tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=False)
    else:
        text = "".join(PLAIN_CHATML_TURN.format(**t) for t in turns) + PLAIN_CHATML_REPLY
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def eos_token_ids(tokenizer, model=None) -> set[int]:
    """End ids the base declares: the tokenizer's eos and the generation config's eos id(s)."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(eos, int):
        ids.add(eos)
    elif isinstance(eos, (list, tuple)):
        ids.update(int(e) for e in eos)
    return ids


def stop_token_ids(tokenizer, model=None) -> set[int]:
    """``eos_token_ids`` plus every end-of-turn token in the vocabulary (chat models end turns with
    a different token than documents, e.g. ``<|im_end|>`` vs ``<|endoftext|>``)."""
    ids = eos_token_ids(tokenizer, model)
    vocab = tokenizer.get_vocab()
    ids.update(int(tokenizer.convert_tokens_to_ids(t)) for t in END_OF_TURN_TOKENS if t in vocab)
    return ids


def pad_token_id(tokenizer) -> int:
    """A pad id for padding (its value never matters: padded positions are masked out)."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if candidate is not None:
            return int(candidate)
    return 0
