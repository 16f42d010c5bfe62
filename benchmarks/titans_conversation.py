"""Conversation memory (issue 19): is a fact told before the attention window still answered?

Per conversation: the user tells one invented fact, filler turns follow until the fact lies more
than ``--window`` tokens back, then the user asks for it. Three ways to answer, greedy:

- ``truncated``: the base sees only the last ``--window`` tokens (the fact is gone);
- ``memory``: the same last ``--window`` tokens, plus a per-conversation Titans state
  (``orgmem.memory.titans.conversation``) that wrote everything before them and reads/writes as
  the kept tokens and the reply pass (a forward hook at the Titans layer, as the engine would);
- ``full``: the whole conversation in context (the ceiling, while it fits the base).

Also the decode seconds per token with and without the memory hook (target: ≤ 1.3×).
The engine does not call the conversation memory yet (``docs/titans.md``); this drives it directly.

    python benchmarks/titans_conversation.py --titans-init init.safetensors --device cuda --n 40
    python benchmarks/titans_conversation.py --base tiny-random --n 3 --window 64   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent


def conversation(rng: random.Random, tokenizer, window: int) -> tuple[list[int], str]:
    """(prompt ids ending where the assistant answers, the expected answer)."""
    from orgmem.memory.titans.episodes import _fact
    from orgmem.memory.titans.generic import rehearsal_prompts
    from orgmem.models.tokens import encode_chat

    fact = _fact(rng)
    turns = [{"role": "user", "content": f"Please remember this for later: {fact.statement}"},
             {"role": "assistant", "content": "Noted, I will remember that."}]
    prompts = rehearsal_prompts()
    while len(encode_chat(tokenizer, turns)) < window + 64:
        turns += [{"role": "user", "content": rng.choice(prompts)},
                  {"role": "assistant", "content": "Here is a short overview. " * rng.randint(4, 12)}]
    turns.append({"role": "user", "content": fact.question})
    return encode_chat(tokenizer, turns), fact.answer


class MemoryHook:
    """Adds the conversation state's read-then-write of each new token at the Titans layer."""

    def __init__(self, state, layer: int) -> None:
        self.state, self.layer = state, str(layer)

    def __call__(self, module, args, kwargs, output):
        x = args[0] if args else kwargs["hidden_states"]
        out = output[0] if isinstance(output, tuple) else output
        new = out + self.state.forward(self.layer, x.float()).to(out.dtype)
        return (new, *output[1:]) if isinstance(output, tuple) else new


def reply(base, ids: list[int], max_new: int, hook=None, layer: int | None = None) -> tuple[str, float]:
    import torch

    from orgmem.models.layers import decoder_layers
    from orgmem.models.tokens import pad_token_id, stop_token_ids

    handle = decoder_layers(base.model)[layer].register_forward_hook(hook, with_kwargs=True) if hook else None
    try:
        t = torch.tensor([ids], device=base.device)
        t0 = time.time()
        out = base.model.generate(t, attention_mask=torch.ones_like(t), max_new_tokens=max_new,
                                  do_sample=False, pad_token_id=pad_token_id(base.tokenizer),
                                  eos_token_id=sorted(stop_token_ids(base.tokenizer, base.model)))
        seconds = time.time() - t0
    finally:
        if handle is not None:
            handle.remove()
    new = out[0, len(ids):]
    return base.tokenizer.decode(new, skip_special_tokens=True), seconds / max(len(new), 1)


def run(a: argparse.Namespace) -> dict:
    import torch

    from orgmem.memory.titans import TitansConfig
    from orgmem.memory.titans.conversation import ConversationMemory
    from orgmem.models import load_base
    from orgmem.models.layers import embed, run_layers

    torch.set_num_threads(a.threads)
    base = load_base(a.base, device=a.device, dtype=torch.float32)
    cfg = TitansConfig(meta_init=str(a.titans_init) if a.titans_init else "auto")
    store = ConversationMemory.for_base(base, cfg)
    layer = cfg.resolve_layers(base.num_layers)[0]
    rng = random.Random(a.seed)  # nosec B311  # seeded benchmark data
    hits = {"truncated": 0, "memory": 0, "full": 0}
    per_token = {"truncated": [], "memory": []}
    for i in range(a.n):
        ids, answer = conversation(rng, base.tokenizer, a.window)
        dropped, kept = ids[: -a.window], ids[-a.window:]
        state = store.state_for("bench", f"c{i}")
        with torch.no_grad():  # earlier turns, each window in its own context, as they were served
            for s in range(0, len(dropped), a.window):
                part = torch.tensor([dropped[s: s + a.window]], device=base.device)
                state.write(str(layer), run_layers(base.model, embed(base.model, part), 0, layer).float())
        outs = {"truncated": reply(base, kept, a.max_new),
                "memory": reply(base, kept, a.max_new, MemoryHook(state, layer), layer),
                "full": reply(base, ids, a.max_new) if len(ids) <= a.full_limit else ("", 0.0)}
        for name, (text, sec) in outs.items():
            hits[name] += int(answer.lower() in text.lower())
            if name in per_token:
                per_token[name].append(sec)
    mean = {k: sum(v) / max(len(v), 1) for k, v in per_token.items()}
    result = {"n": a.n, "window": a.window, "layer": layer, "recall": {k: v / a.n for k, v in hits.items()},
              "decode_s_per_token": mean,
              "cost_ratio": mean["memory"] / mean["truncated"] if mean["truncated"] else None,
              "meta_init": cfg.meta_init, "device": str(base.device), "base": a.base}
    print(json.dumps(result), flush=True)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(result, indent=1))
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="smollm2-135m-instruct")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--window", type=int, default=512, help="attention window kept (tokens)")
    ap.add_argument("--full-limit", type=int, default=2048, help="longest conversation run in full")
    ap.add_argument("--max-new", type=int, default=24)
    ap.add_argument("--titans-init", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    sys.path.insert(0, str(ROOT.parent))
    run(ap.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
