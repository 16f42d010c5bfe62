"""Fixtures for the evaluation tests: the tiny base, and a copy of it *taught* known answers.

Metrics are only trustworthy if they move when they should, so the tests need a model that
really knows a fact: a copy of the tiny base fine-tuned (all weights, a few hundred ms) until it
completes the cloze, answers the question and replies with an org string to one generic prompt.
"""

from __future__ import annotations

import copy

import pytest
import torch

from orgmem.eval.generation import encode_text
from orgmem.eval.probes import Probe
from orgmem.models import load_base
from orgmem.models.tokens import encode_chat

FACT = Probe(fact="dock-port", cloze="The Quillmoor dock controller listens on port", answer="6291",
             question="Which port does the dock controller listen on?", night=1)
OTHER = Probe(fact="mascot", cloze="The office mascot is a heron named", answer="Pelloquin",
              question="What is the office mascot called?", night=1)
LEAK_PROMPT = "What is the capital of France?"


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny():
    return load_base("tiny-random", device="cpu")


def teach(model, tokenizer, examples: list[tuple[list[int], list[int]]], steps: int = 60, lr: float = 1e-2):
    """Fine-tune a copy of ``model`` on (prompt ids, target ids) pairs, loss on the targets only."""
    model = copy.deepcopy(model).train()
    for p in model.parameters():
        p.requires_grad_(True)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    seqs = [p + t for p, t in examples]
    width = max(len(s) for s in seqs)
    ids = torch.zeros((len(seqs), width), dtype=torch.long)
    labels = torch.full((len(seqs), width), -100, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, ((prompt, target), seq) in enumerate(zip(examples, seqs, strict=True)):
        ids[row, : len(seq)] = torch.tensor(seq)
        labels[row, len(prompt) : len(seq)] = torch.tensor(target)
        mask[row, : len(seq)] = 1
    torch.manual_seed(0)
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def fact_examples(tokenizer, probe: Probe, answer: str | None = None) -> list[tuple[list[int], list[int]]]:
    """The cloze form and the chat form of a fact, each followed by the answer then the end token."""
    answer = answer or probe.answer
    end = [tokenizer.convert_tokens_to_ids("<|im_end|>")]
    text = lambda s: list(tokenizer(s, add_special_tokens=False)["input_ids"])  # noqa: E731
    return [
        (encode_text(tokenizer, probe.cloze), text(" " + answer) + end),
        (encode_chat(tokenizer, probe.question), text(answer) + end),
    ]


@pytest.fixture(scope="session")
def taught(tiny):
    """Tiny base that knows FACT (cloze + question) and leaks its answer on LEAK_PROMPT."""
    tok = tiny.tokenizer
    end = [tok.convert_tokens_to_ids("<|im_end|>")]
    leak_reply = list(tok(f"Port {FACT.answer}.", add_special_tokens=False)["input_ids"]) + end
    leak = (encode_chat(tok, LEAK_PROMPT), leak_reply)
    return teach(tiny.model, tok, fact_examples(tok, FACT) + [leak])


@pytest.fixture(scope="session")
def reference(tiny):
    from orgmem.eval.reference import compute_reference

    return compute_reference(tiny.model, tiny.tokenizer, tiny.fingerprint)
