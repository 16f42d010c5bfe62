"""Calling ``orgmem export`` and comparing an exported model with what the server computes."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from typer.testing import CliRunner

from orgmem.cli.main import app
from orgmem.serving.routing import MemoryRouter

runner = CliRunner()


def export(*args: str, code: int = 0):
    """``orgmem export ARGS --json``: the parsed output, or the result when a failure is expected."""
    result = runner.invoke(app, ["export", *args, "--json"])
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout) if code == 0 else result


def load_exported(path: Path, dtype: torch.dtype = torch.float32):
    """Plain transformers, as a user would: the folder's own code via ``trust_remote_code``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(path), trust_remote_code=True, dtype=dtype)
    return model.eval(), AutoTokenizer.from_pretrained(str(path))


def served_logits(base, memory, ids: torch.Tensor) -> torch.Tensor:
    """The server's forward: the shared base with ``memory`` routed onto every row."""
    router = MemoryRouter(base.model)
    router.ensure_hooks(memory.paths)
    try:
        with torch.inference_mode(), router.route([memory] * ids.shape[0]):
            return base.model(input_ids=ids).logits
    finally:
        router.remove_hooks()


def sample_inputs(seed: int = 0) -> list[torch.Tensor]:
    """Several inputs: one token, short and longer rows, and a batch of three rows."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.randint(3, 250, shape, generator=gen) for shape in ((1, 1), (1, 7), (1, 40), (3, 12))]


def greedy_tokens(model, prompt: list[int], max_new_tokens: int) -> list[int]:
    """``generate`` greedy: the new ids up to the first end-of-turn id the folder's generation
    config names (``generate`` stops there)."""
    with torch.inference_mode():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=max_new_tokens, do_sample=False)
    stops = model.generation_config.eos_token_id
    stops = {stops} if isinstance(stops, int) else set(stops)
    new = out[0, len(prompt):].tolist()
    cut = next((i + 1 for i, t in enumerate(new) if t in stops), len(new))
    return new[:cut]
