"""Constrained decoding in the batched engine: which library, and what a json_schema reply costs.

For each mode (plain decoding; xgrammar; llguidance) ``--batch`` concurrent requests are decoded
together by the engine (no HTTP), ``--repeats`` times, modes interleaved. Per mode:
  mask_ms_per_token   - time in the constraint's ``allowed`` + ``advance`` per decoded token of a
                        row (the library's mask computation, the bitmask unpacked to the bool mask
                        the engine applies, and advancing the matcher);
  tokens_per_s        - completion tokens of all rows / wall time of the batch (prefill included);
  ratio_to_plain      - tokens_per_s / plain tokens_per_s in the same run (target >= 0.8);
  parsed / validated  - replies that ended "stop" and parse as strict JSON / validate against the schema.
Plain rows are held to the same length as constrained rows would reach (``min_tokens`` =
``max_tokens``) so the batch stays full; constrained rows may close their JSON earlier (their
tokens/s is then over fewer tokens, at the same per-step batch).
Writes benchmarks/results/grammar_choice.json.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/serving_structured.py --batch 8 --tokens 64 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import threading
import time
from pathlib import Path

import jsonschema
import torch

RESULTS = Path(__file__).resolve().parent / "results" / "grammar_choice.json"
SCHEMA = {"type": "object", "additionalProperties": False, "required": ["title", "rooms"], "properties": {
    "title": {"type": "string"},
    "rooms": {"type": "array", "items": {"type": "object", "additionalProperties": False,
                                         "required": ["name", "floor", "description"], "properties": {
                                             "name": {"type": "string"},
                                             "floor": {"type": "integer"},
                                             "kind": {"enum": ["cellar", "stairs", "lamp", "living"]},
                                             "description": {"type": "string"}}}}}}
PROMPT = ("Describe every room of a lighthouse as JSON with a title and a list of rooms (name, floor, "
          "kind, description). Lighthouse number {i}.")
_SHIFTS = torch.arange(32, dtype=torch.int32)


class Timed:
    """Wraps a constraint; adds the time of its calls to ``seconds``."""

    def __init__(self, inner) -> None:
        self.inner, self.seconds, self.tokens = inner, 0.0, 0

    def allowed(self, vocab_size: int):
        t0 = time.perf_counter()
        try:
            return self.inner.allowed(vocab_size)
        finally:
            self.seconds += time.perf_counter() - t0

    def advance(self, token: int) -> None:
        t0 = time.perf_counter()
        self.inner.advance(token)
        self.tokens += 1
        self.seconds += time.perf_counter() - t0

    @property
    def finished(self) -> bool:
        return self.inner.finished


class LLGuidanceConstraint:
    """The same ``TokenConstraint`` over llguidance (the alternative measured here)."""

    def __init__(self, lltok, schema: dict, vocab_size: int) -> None:
        import llguidance
        import llguidance.torch as llt

        grammar = llguidance.LLMatcher.grammar_from_json_schema(schema, defaults={
            "whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "})
        self.llt = llt
        self.matcher = llguidance.LLMatcher(lltok, grammar)
        self.bitmask = llt.allocate_token_bitmask(1, vocab_size)

    def allowed(self, vocab_size: int):
        self.llt.fill_next_token_bitmask(self.matcher, self.bitmask, 0)
        return ((self.bitmask[0][:, None] >> _SHIFTS) & 1).bool().flatten()[:vocab_size]

    def advance(self, token: int) -> None:
        self.matcher.consume_token(int(token))

    @property
    def finished(self) -> bool:
        return bool(self.matcher.is_stopped())


def factories(engine) -> dict:
    from orgmem.serving.grammar import GrammarSpec, compiler_for

    vocab = int(engine.model.config.vocab_size)
    t0 = time.perf_counter()
    xgr = compiler_for(engine.tokenizer, vocab, engine.stop_ids)
    xgr_setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    xgr.compiled(GrammarSpec.json_schema(SCHEMA))
    xgr_compile = time.perf_counter() - t0
    import llguidance.hf

    t0 = time.perf_counter()
    lltok = llguidance.hf.from_tokenizer(engine.tokenizer, n_vocab=vocab, eos_token=sorted(engine.stop_ids))
    llg_setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    LLGuidanceConstraint(lltok, SCHEMA, vocab)
    llg_compile = time.perf_counter() - t0
    setup = {"xgrammar": {"tokenizer_setup_s": xgr_setup, "schema_compile_s": xgr_compile},
             "llguidance": {"tokenizer_setup_s": llg_setup, "schema_compile_s": llg_compile}}
    return {"plain": None,
            "xgrammar": lambda: xgr.constraint(GrammarSpec.json_schema(SCHEMA)),
            "llguidance": lambda: LLGuidanceConstraint(lltok, SCHEMA, vocab)}, setup


def run_batch(engine, make, batch: int, tokens: int, seed: int) -> dict:
    from orgmem.models.tokens import encode_chat
    from orgmem.serving.engine import Finished, GenerationRequest
    from orgmem.serving.sampling import SamplingParams

    ends: list = []
    lock, all_done = threading.Lock(), threading.Event()
    constraints = [Timed(make()) if make else None for _ in range(batch)]

    def on_event(event) -> None:
        if isinstance(event, Finished):
            with lock:
                ends.append(event)
                if len(ends) == batch:
                    all_done.set()

    t0 = time.perf_counter()
    for i in range(batch):
        params = SamplingParams(max_tokens=tokens, temperature=0.7, seed=seed + i,
                                min_tokens=0 if make else tokens)
        engine.submit(GenerationRequest(prompt_ids=encode_chat(engine.tokenizer, PROMPT.format(i=i)),
                                        params=params, memory=None, on_event=on_event,
                                        constraint=constraints[i]))
    if not all_done.wait(600):
        raise SystemExit("the batch did not finish")
    wall = time.perf_counter() - t0
    completion = sum(e.completion_tokens for e in ends)
    out = {"wall_s": wall, "completion_tokens": completion, "tokens_per_s": completion / wall}
    if make:
        timed = [c for c in constraints if c is not None]
        out["mask_ms_per_token"] = 1e3 * sum(c.seconds for c in timed) / max(1, sum(c.tokens for c in timed))
        out["parsed"], out["validated"], out["stopped"] = _check(ends)
    return out


def _check(ends) -> tuple[int, int, int]:
    parsed = validated = stopped = 0
    for e in ends:
        if e.reason != "stop":
            continue
        stopped += 1
        try:
            value = json.loads(e.text)
        except ValueError:
            continue
        parsed += 1
        try:
            jsonschema.validate(value, SCHEMA)
            validated += 1
        except jsonschema.ValidationError:
            pass
    return parsed, validated, stopped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="smollm2-135m-instruct")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"],
                        help="Serving dtype of the base, as in benchmarks/serving.py (auto: a server's).")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)
    from orgmem.models import load_base
    from orgmem.models.precision import serving_dtype
    from orgmem.serving.engine import GenerationEngine

    base = load_base(args.base, device="cpu")
    dtype = serving_dtype(args.dtype, base.device)
    base.model.to(dtype)
    base.dtype = dtype
    engine = GenerationEngine(base, max_batch=args.batch).start()
    try:
        makers, setup = factories(engine)
        run_batch(engine, makers["xgrammar"], 2, 8, 0)  # warm-up
        runs: dict[str, list[dict]] = {m: [] for m in makers}
        for r in range(args.repeats):
            for mode, make in makers.items():
                runs[mode].append(run_batch(engine, make, args.batch, args.tokens, 1000 * r))
    finally:
        engine.stop()
    summary = {}
    for mode, rows in runs.items():
        keys = [k for k in rows[0] if isinstance(rows[0][k], float)]
        summary[mode] = {k: statistics.median(row[k] for row in rows) for k in keys}
        for k in ("parsed", "validated", "stopped", "completion_tokens"):
            if k in rows[0]:
                summary[mode][k] = sum(row[k] for row in rows)
        summary[mode]["replies"] = args.batch * args.repeats
    plain = summary["plain"]["tokens_per_s"]
    for mode in ("xgrammar", "llguidance"):
        summary[mode]["ratio_to_plain"] = summary[mode]["tokens_per_s"] / plain
        summary[mode].update(setup[mode])
    result = {"base": args.base, "serve_dtype": str(dtype).removeprefix("torch."), "batch": args.batch,
              "max_tokens": args.tokens, "repeats": args.repeats,
              "schema": SCHEMA, "modes": summary, "runs": runs,
              "command": "HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/serving_structured.py "
                         f"--base {args.base} --batch {args.batch} --tokens {args.tokens} "
                         f"--repeats {args.repeats} --dtype {args.dtype}"
                         + (f" --threads {args.threads}" if args.threads else ""),
              "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                          "load_avg": os.getloadavg(), "python": platform.python_version(),
                          "torch": torch.__version__}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
