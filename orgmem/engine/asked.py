"""Questions the base model itself writes for each derived statement.

Why: the heuristic forms (``forms.py``, ``spans.py``) ask in the statement's own word order ("Each
hub has how many charging pads?") or by topic ("Tell me about FLEET_CLUSTER."). People ask with
the question word first and their own words ("How many charging pads does each hub have?"). The
knowledge benchmark showed the model then completes the documents (cloze) far better than it
answers (question). Even a small instruct model writes such questions well from a few examples.
They are filtered (one line, a question, shares a content word with the statement) and trained
as one more chat form whose answer is the statement (``forms.value_answer``).

Greedy decoding with the memory switched off: the same statements on the same base always get the
same questions, so consolidation stays deterministic under its seed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch

from orgmem.eval.generation import greedy_generate
from orgmem.models.tokens import eos_token_ids, pad_token_id

# Invented examples, one per question shape (when / who / which / how many); none is about any org.
FEW_SHOT = (
    "Sentence: The cafeteria opens at 07:45 on weekdays.\n"
    "Question: When does the cafeteria open on weekdays?\n\n"
    "Sentence: The support hotline is run by Marta Oja, our customer care lead.\n"
    "Question: Who runs the support hotline?\n\n"
    "Sentence: Invoices are archived in the bucket fin-archive-7 for ten years.\n"
    "Question: In which bucket are invoices archived?\n\n"
    "Sentence: Each warehouse keeps 40 spare pallets by the loading door.\n"
    "Question: How many spare pallets does each warehouse keep?\n\n"
)
MAX_NEW_TOKENS = 24
_WORD = re.compile(r"[A-Za-z][A-Za-z\-]{3,}")
_COMMON = {"what", "which", "when", "where", "does", "have", "there", "their", "that", "this", "with",
           "from", "about", "answer", "question", "sentence", "many", "much", "every", "each"}
_ECHO = re.compile(r"^(?:what is the answer|is the sentence|what does this sentence)", re.I)


def prompt_for(statement: str) -> str:
    return f"{FEW_SHOT}Sentence: {statement}\nQuestion:"


def clean_question(raw: str, statement: str) -> str | None:
    """The first line if it is a usable question about the statement, else None."""
    line = raw.strip().split("\n", 1)[0].strip()
    words = line.split()
    if not line.endswith("?") or not 3 <= len(words) <= 20 or _ECHO.match(line):
        return None
    said = {w.lower() for w in _WORD.findall(statement)} - _COMMON
    asked = {w.lower() for w in _WORD.findall(line)} - _COMMON
    return line if said & asked else None


@torch.no_grad()
def written_questions(base, statements: Sequence[str], batch_size: int = 16) -> dict[str, str]:
    """statement -> one question written by ``base``'s model (statements with no usable one are
    left out). The caller switches any attached memory off first."""
    unique = list(dict.fromkeys(s for s in statements if s.strip()))
    if not unique:
        return {}
    tok = base.tokenizer
    prompts = [list(tok(prompt_for(s), add_special_tokens=False)["input_ids"]) for s in unique]
    newline = set(tok("\n", add_special_tokens=False)["input_ids"])
    stops = newline | eos_token_ids(tok)
    replies = greedy_generate(base.model, prompts, pad_id=pad_token_id(tok), stop_ids=stops,
                              max_new_tokens=MAX_NEW_TOKENS, batch_size=batch_size)
    out = {}
    for statement, reply in zip(unique, replies, strict=True):
        question = clean_question(tok.decode(reply.ids, skip_special_tokens=True), statement)
        if question:
            out[statement] = question
    return out
