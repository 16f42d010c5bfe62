"""Serving benchmark: memory overhead per token and to first token, swap time, memory per org,
throughput with 1, 4 and 16 orgs active — all in one run, against the bare base in the same run.

What is measured (the serving engine itself, without HTTP, so the numbers are the model's):
  single_stream - one request at a time: time to first token and ms per decoded token, for the
                  bare base and with an org's memory attached (interleaved repeats, medians), plus
                  plain ``model.generate`` on the base as the reference loop;
  swap          - a request for a checkpoint not loaded yet: read from the store, sha256 check,
                  build (what the first request after a pin/rollback/promotion pays), cold medians;
  memory_per_org- weight bytes of one org's memory and the process RSS growth per loaded org;
  throughput    - 16 concurrent streams spread over 1, 4 or 16 orgs (plus 1 stream), aggregate
                  completion tokens/s over the whole run including prefill.
  choices       - one sampled request with ``n=4`` (one prefill, four rows) vs one with ``n=1``, same
                  prompt, memory and sampling (temperature 0.8, seeded), interleaved repeats:
                  aggregate completion tokens/s and their ratio (target >= 2.5x); and the
                  ``json_schema`` row (``constrained_row``): one request under the product's
                  xgrammar constraint vs the same request decoded plainly to the same length,
                  paired per repeat (target >= 0.8x), with the mask ms/token and how many
                  replies that ended "stop" parse and validate.
Writes benchmarks/results/serving.json and serving.md (the table docs/benchmarks.md quotes);
``--sections`` runs some sections only and merges them into the JSON already there.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/serving.py --tokens 64 --repeats 3 --threads 2
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/serving.py --sections choices --threads 2

Run it on a quiet machine (load < 1.5): two OpenMP threads competing with another busy process
for two cores ran 4-5x slower here. As ``orgmem serve`` does, the engine decodes on the main
thread and the clients (which load memories) run on a helper thread with one torch thread
(``orgmem.serving.threads``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results" / "serving.json"
PROMPT = ("Write a long, detailed story about a lighthouse keeper named {name} who discovers a hidden "
          "map in the lighthouse cellar, and describe every room of the lighthouse along the way.")
NAMES = ["Ada", "Bjorn", "Chen", "Dara", "Emil", "Fatima", "Gus", "Hana", "Ivo", "Jun", "Kari", "Lea",
         "Milo", "Nina", "Omar", "Pia"]


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def make_memory(base, seed: int) -> bytes:
    """A default-config CMS memory with non-zero weights (the cost of a trained one, not its content)."""
    from orgmem.memory import attach, save_memory

    gen = torch.Generator().manual_seed(seed)
    with attach(base, "cms") as handle:
        state = {k: v + 0.01 * torch.randn(v.shape, generator=gen)
                 for k, v in handle.memory_state_dict().items()}
        handle.load_memory_state_dict(state)
        return save_memory(handle)


def build_deployment(base, memories: list[bytes], root: Path):
    """SQLite + local store with one org per memory, one promoted checkpoint each; a started ServingState."""
    from orgmem.api.state import ServingState
    from orgmem.checkpoints import MEMORY, CheckpointDraft, commit_checkpoint
    from orgmem.config import Settings
    from orgmem.db.migrate import upgrade
    from orgmem.db.session import session_scope
    from orgmem.keys import ApiKeyIdentity
    from orgmem.lineage import create_org
    from orgmem.serving.config import ServeSettings
    from orgmem.store import open_store

    settings = Settings(home=root, database_url=f"sqlite:///{root / 'orgmem.db'}",
                        store_url=f"file://{root / 'store'}", base_model=base.name)
    upgrade(settings.database_url)
    store = open_store(settings=settings)
    identities = []
    n_orgs = len(memories)
    for i in range(n_orgs):
        slug = f"org-{i:02d}"
        with session_scope(settings.database_url, write=True) as s:
            org = create_org(s, slug, actor="bench")
            org_id = org.id
        with session_scope(settings.database_url) as s:
            commit_checkpoint(s, store, CheckpointDraft(
                org=slug, parent_id=None, objects={MEMORY: memories[i]}, manifest={}, inputs=[], metrics={},
                status="promoted", created_by="bench", base_model=base.name,
                base_fingerprint=base.fingerprint, memory_kind="cms"))
        identities.append(ApiKeyIdentity(i + 1, "bench", "admin", f"omk_bench{i:04d}", org_id, slug))
    # As ``orgmem serve`` runs it: the engine decodes on the main thread (see GenerationEngine.run_here).
    state = ServingState(settings, ServeSettings(cache_size=max(16, n_orgs), max_batch=16), base=base,
                         engine_in_caller=True)
    state.start()
    return state, identities


@dataclass
class StreamResult:
    ttft_s: float
    total_s: float
    tokens: int
    reason: str = ""  # the engine's finish reason ("stop" | "length")
    text: str = ""

    @property
    def ms_per_token(self) -> float:
        return 1000 * (self.total_s - self.ttft_s) / max(1, self.tokens - 1)


def run_streams(engine, jobs: list[tuple[list[int], object]], max_tokens: int, n: int = 1,
                sampling: dict | None = None, constraint=None) -> tuple[list[StreamResult], float]:
    """Submit all (prompt, memory) jobs at once (``n`` choices each, ``sampling`` overriding greedy);
    per-stream (per-choice) timings and the wall time of the whole run.

    Plain rows are held to ``max_tokens`` (``min_tokens`` = ``max_tokens``: no early end of turn).
    A ``constraint`` (a ``TokenConstraint``, one job with n=1) gets ``min_tokens`` 0 instead: once
    its JSON is complete the grammar allows only the end of turn, which ``min_tokens`` would forbid."""
    from orgmem.serving.engine import Failed, Finished, GenerationRequest
    from orgmem.serving.sampling import SamplingParams

    if constraint is not None and (len(jobs) != 1 or n != 1):
        raise SystemExit("a constrained run is one request with n=1")
    results: list[StreamResult | None] = [None] * (len(jobs) * n)
    done = threading.Semaphore(0)
    params = SamplingParams(max_tokens=max_tokens, min_tokens=0 if constraint is not None else max_tokens,
                            **(sampling or {"temperature": 0}))
    t0 = time.perf_counter()

    def on_event(i: int, submitted: float):
        def handle(event) -> None:
            if isinstance(event, Finished):
                results[i * n + event.choice] = StreamResult(
                    event.first_token_s or 0.0, time.perf_counter() - submitted, event.completion_tokens,
                    event.reason, event.text)
                done.release()
            elif isinstance(event, Failed):
                raise SystemExit(f"generation failed: {event.error}")
        return handle

    for i, (prompt, memory) in enumerate(jobs):
        handler = on_event(i, time.perf_counter())
        engine.submit(GenerationRequest(prompt_ids=prompt, memory=memory, on_event=handler, n=n,
                                        params=params, constraint=constraint))
    for _ in range(len(jobs) * n):
        done.acquire()
    return [r for r in results if r is not None], time.perf_counter() - t0


def prompt_ids(tokenizer, i: int) -> list[int]:
    return list(tokenizer(PROMPT.format(name=NAMES[i % len(NAMES)]), add_special_tokens=False)["input_ids"])


def _interleaved(engine, prompt: list[int], memory, tokens: int, repeats: int
                 ) -> dict[str, list[StreamResult]]:
    rows: dict[str, list[StreamResult]] = {"base": [], "memory": []}
    for _ in range(repeats):
        for name, mem in (("base", None), ("memory", memory)):
            rows[name] += run_streams(engine, [(prompt, mem)], tokens)[0]
    return rows


def single_stream(state, identities, tokens: int, repeats: int) -> dict:
    """TTFT from many 1-token runs, ms/token from full runs; base and memory interleaved (same noise)."""
    engine = state.engine
    memory = state.memory_for(state.resolve(identities[0], identities[0].org_slug))
    prompt = prompt_ids(engine.tokenizer, 0)
    run_streams(engine, [(prompt, memory)], 4)  # warm-up
    first = _interleaved(engine, prompt, memory, 1, 4 * repeats)
    full = _interleaved(engine, prompt, memory, tokens, repeats)
    out: dict = {}
    for name in ("base", "memory"):
        ms = statistics.median(r.ms_per_token for r in full[name])
        out[name] = {"ttft_ms": 1000 * statistics.median(r.ttft_s for r in first[name]), "ms_per_token": ms,
                     "tokens_per_s": 1000 / ms, "completion_tokens": [r.tokens for r in full[name]]}
    out["ratio_memory_to_base"] = {"ttft": out["memory"]["ttft_ms"] / out["base"]["ttft_ms"],
                                   "per_token": out["memory"]["ms_per_token"] / out["base"]["ms_per_token"]}
    out["prompt_tokens"] = len(prompt)
    return out


def hf_generate_rate(base, prompt: list[int], tokens: int) -> float:
    """The reference loop: ``model.generate`` greedy on the bare base (tokens/s after the first)."""
    ids = torch.tensor([prompt])
    with torch.inference_mode():
        base.model.generate(ids, max_new_tokens=2, min_new_tokens=2, do_sample=False)
        t0 = time.perf_counter()
        base.model.generate(ids, max_new_tokens=1, min_new_tokens=1, do_sample=False)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        base.model.generate(ids, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
        total = time.perf_counter() - t0
    return (tokens - 1) / max(1e-9, total - first)


def swap_times(state, identities, repeats: int) -> dict:
    """Cold loads: drop the cache, then resolve + load (store read, checksum, build)."""
    seconds = []
    for i in range(repeats):
        state.clear_cache()
        ident = identities[i % len(identities)]
        t0 = time.perf_counter()
        state.memory_for(state.resolve(ident, ident.org_slug))
        seconds.append(time.perf_counter() - t0)
    return {"cold_load_ms_median": 1000 * statistics.median(seconds), "cold_load_ms_max": 1000 * max(seconds),
            "samples": len(seconds)}


def memory_per_org(state, identities) -> dict:
    state.clear_cache()  # cache_size >= len(identities): all of them stay loaded
    before = rss_bytes()
    memories = [state.memory_for(state.resolve(i, i.org_slug)) for i in identities]
    after = rss_bytes()
    return {"weight_bytes_per_org": memories[0].nbytes, "orgs_loaded": len(memories),
            "rss_growth_per_org": (after - before) / len(memories)}


def throughput(state, identities, tokens: int) -> dict:
    engine = state.engine
    memories = [state.memory_for(state.resolve(i, i.org_slug)) for i in identities]
    out = {}
    for streams, orgs in ((1, 1), (16, 1), (16, 4), (16, 16)):
        jobs = [(prompt_ids(engine.tokenizer, s), memories[s % orgs]) for s in range(streams)]
        before = engine.stats.max_batch_seen
        engine.stats.max_batch_seen = 0
        results, wall = run_streams(engine, jobs, tokens)
        total = sum(r.tokens for r in results)
        out[f"{streams}_streams_{orgs}_orgs"] = {
            "aggregate_tokens_per_s": total / wall, "wall_s": wall, "completion_tokens": total,
            "max_batch": engine.stats.max_batch_seen,
            "median_ms_per_token_per_stream": statistics.median(r.ms_per_token for r in results)}
        engine.stats.max_batch_seen = max(before, engine.stats.max_batch_seen)
    single = out["1_streams_1_orgs"]["aggregate_tokens_per_s"]
    out["speedup_16_streams_16_orgs_vs_1"] = out["16_streams_16_orgs"]["aggregate_tokens_per_s"] / single
    return out


CHOICE_SAMPLING = {"temperature": 0.8, "top_p": 0.95, "seed": 1234}


#: The ``json_schema`` row's fixed schema: nested (an object in the object, an array of enums) and
#: bounded (``maxLength``, ``maxItems``) so that a reply can close it within the documented run's
#: 32 tokens and its parse/validate counts mean something. (With an ``age`` integer added, SmolLM2's
#: replies took 32-35 tokens and none closed within 32.)
STRUCTURED_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["keeper", "rooms"], "properties": {
        "keeper": {"type": "object", "additionalProperties": False, "required": ["name"],
                   "properties": {"name": {"type": "string", "maxLength": 12}}},
        "rooms": {"type": "array", "minItems": 1, "maxItems": 2,
                  "items": {"enum": ["cellar", "stairs", "lamp", "living"]}}}}
STRUCTURED_PROMPT = ("The lighthouse keeper {name} shows you the lighthouse. Reply with JSON only: the "
                     "keeper's name and the rooms you visit.")


def _validated(replies: list[StreamResult], schema: dict) -> dict[str, int]:
    """Of the replies that ended "stop": how many parse as strict JSON and validate against ``schema``."""
    import jsonschema

    stopped = [r for r in replies if r.reason == "stop"]
    parsed = validated = 0
    for r in stopped:
        try:
            value = json.loads(r.text)
        except ValueError:
            continue
        parsed += 1
        validated += jsonschema.Draft202012Validator(schema).is_valid(value)
    return {"replies": len(replies), "stopped": len(stopped), "parsed": parsed, "validated": validated}


def constrained_row(state, memory, tokens: int, repeats: int) -> dict:
    """The ``json_schema`` row (issue 18): one request decoding under the product's grammar
    (``orgmem.serving.grammar``, a ``TokenConstraint`` on ``GenerationRequest.constraint``, as
    ``orgmem.api.structured.constraint_for`` builds it) vs the same request decoded plainly, same
    prompt, memory and sampling (seeded per repeat, the same seed on both sides), interleaved.

    Fairness: a constrained reply ends when its JSON is complete (``min_tokens`` 0, see
    ``run_streams``), usually before ``tokens``. The plain run of each pair is therefore held to
    exactly the token count of the constrained reply just before it (``max_tokens`` =
    ``min_tokens`` = that count), so both sides spread the same prefill over the same number of
    decoded tokens; tokens/s is completion tokens ÷ wall (prefill included). The per-pair ratio's
    median is the headline; the decode-only rate (ms per token after the first) is reported too."""
    from importlib.metadata import version

    from benchmarks.serving_structured import Timed
    from orgmem.models.tokens import encode_chat
    from orgmem.serving.grammar import GrammarSpec, compiler_for

    engine = state.engine
    prompt = encode_chat(engine.tokenizer, STRUCTURED_PROMPT.format(name=NAMES[0]))
    t0 = time.perf_counter()
    compiler = compiler_for(engine.tokenizer, int(engine.model.config.vocab_size), engine.stop_ids)
    spec = GrammarSpec.json_schema(STRUCTURED_SCHEMA)
    compiler.compiled(spec)  # compiled once per schema and cached, as the server does
    compile_s = time.perf_counter() - t0
    sampling = CHOICE_SAMPLING
    warm = compiler.constraint(spec)
    run_streams(engine, [(prompt, memory)], 4, sampling=sampling, constraint=warm)  # warm-up
    pairs: list[tuple[StreamResult, float, StreamResult, float]] = []
    replies: list[StreamResult] = []
    mask_s = mask_tokens = 0
    for r in range(repeats):
        seeded = {**sampling, "seed": int(sampling["seed"]) + r}
        timed = Timed(compiler.constraint(spec))
        (constrained,), c_wall = run_streams(engine, [(prompt, memory)], tokens, sampling=seeded,
                                             constraint=timed)
        mask_s, mask_tokens = mask_s + timed.seconds, mask_tokens + timed.tokens
        length = max(1, constrained.tokens)
        (plain,), p_wall = run_streams(engine, [(prompt, memory)], length, sampling=seeded)
        pairs.append((constrained, c_wall, plain, p_wall))
        replies.append(constrained)
    c_rates = [c.tokens / cw for c, cw, _, _ in pairs]
    p_rates = [p.tokens / pw for _, _, p, pw in pairs]
    return {
        "aggregate_tokens_per_s": statistics.median(c_rates), "samples": c_rates,
        "plain_tokens_per_s": statistics.median(p_rates), "plain_samples": p_rates,
        "ratio_to_single": statistics.median(c_rates) / statistics.median(p_rates),
        "ratio_paired_median": statistics.median(c / p for c, p in zip(c_rates, p_rates, strict=True)),
        "decode_ms_per_token": statistics.median(c.ms_per_token for c, _, _, _ in pairs),
        "plain_decode_ms_per_token": statistics.median(p.ms_per_token for _, _, p, _ in pairs),
        "mask_ms_per_token": 1000 * mask_s / max(1, mask_tokens),
        "completion_tokens": [c.tokens for c in replies], "finish_reasons": [c.reason for c in replies],
        "plain_completion_tokens": [p.tokens for _, _, p, _ in pairs], "texts": [c.text for c in replies],
        **_validated(replies, STRUCTURED_SCHEMA),
        "schema_compile_s": compile_s, "library": f"xgrammar {version('xgrammar')}",
        "prompt_tokens": len(prompt), "schema": STRUCTURED_SCHEMA, "sampling": sampling,
        "seeds": [int(sampling["seed"]) + r for r in range(repeats)],
        "plain_length": "held to each constrained reply's token count (same seed, same prompt)",
    }


#: Extra rows of the choices section, by name: each gets (state, memory, tokens, repeats) and
#: returns its row.
CHOICE_ROWS: dict[str, Callable[..., dict | None]] = {"json_schema": constrained_row}


def choices(state, identities, tokens: int, repeats: int) -> dict:
    """n=4 from one request vs n=1, sampled, same prompt and memory; interleaved, aggregate tok/s."""
    engine = state.engine
    memory = state.memory_for(state.resolve(identities[0], identities[0].org_slug))
    prompt = prompt_ids(engine.tokenizer, 0)
    run_streams(engine, [(prompt, memory)], 4, n=4, sampling=CHOICE_SAMPLING)  # warm-up
    rates: dict[str, list[float]] = {"n1": [], "n4": []}
    for _ in range(repeats):
        for name, n in (("n1", 1), ("n4", 4)):
            results, wall = run_streams(engine, [(prompt, memory)], tokens, n=n, sampling=CHOICE_SAMPLING)
            rates[name].append(sum(r.tokens for r in results) / wall)
    out: dict = {name: {"aggregate_tokens_per_s": statistics.median(v), "samples": v}
                 for name, v in rates.items()}
    out["ratio_n4_to_n1"] = out["n4"]["aggregate_tokens_per_s"] / out["n1"]["aggregate_tokens_per_s"]
    # each n=4 run against the n=1 run just before it (same moment's machine load): the steadier figure
    out["ratio_n4_to_n1_paired_median"] = statistics.median(b / a for a, b in zip(rates["n1"], rates["n4"],
                                                                                    strict=True))
    out["sampling"] = CHOICE_SAMPLING
    out["prompt_tokens"] = len(prompt)
    for name, row in CHOICE_ROWS.items():
        measured = row(state, memory, tokens, repeats)
        if measured is not None:
            out[name] = measured
    return out


def _choices_markdown(r: dict) -> list[str]:
    ch = r.get("choices")
    if not ch:
        return []
    sampling = ch["sampling"]
    per_choice = ch.get("tokens_per_choice") or r.get("tokens_per_stream")
    lines = ["", f"Sampled decoding (temperature {sampling['temperature']}, top_p {sampling['top_p']}, "
             f"seeded), one request, {per_choice} tokens per choice:", "",
             "| request | aggregate tok/s | ratio to n=1 (target) |", "|---|---|---|",
             f"| n=1 | {ch['n1']['aggregate_tokens_per_s']:.1f} | 1 |",
             f"| n=4 (one prefill, 4 rows) | {ch['n4']['aggregate_tokens_per_s']:.1f} | "
             f"{ch['ratio_n4_to_n1']:.2f}x (≥ 2.5x); paired runs: "
             f"{ch.get('ratio_n4_to_n1_paired_median', ch['ratio_n4_to_n1']):.2f}x |"]
    schema = ch.get("json_schema")
    if not schema:
        lines.append("| json_schema constrained | not measured yet (structured output) | (≥ 0.8x) |")
        return lines
    lines += [f"| json_schema constrained ({schema['library']}) | {schema['aggregate_tokens_per_s']:.1f} | "
              f"{schema['ratio_paired_median']:.2f}x (≥ 0.8x) to the same request decoded plainly to the "
              f"same length ({schema['plain_tokens_per_s']:.1f} tok/s); ratio of medians "
              f"{schema['ratio_to_single']:.2f}x |", "",
              f"json_schema replies: {schema['stopped']}/{schema['replies']} ended \"stop\" "
              f"({schema['parsed']} parsed, {schema['validated']} validated), completion tokens "
              f"{schema['completion_tokens']}; mask {schema['mask_ms_per_token']:.2f} ms/token; decode "
              f"{schema['decode_ms_per_token']:.0f} vs {schema['plain_decode_ms_per_token']:.0f} ms/token "
              "plain; "
              f"prompt {schema['prompt_tokens']} tokens."]
    return lines


def _rate(row: dict) -> str:
    return f"{row['ms_per_token']:.0f} ms ({row['tokens_per_s']:.1f} tok/s)"


def markdown(r: dict) -> str:
    """The table docs/benchmarks.md quotes."""
    if not all(name in r for name in ("single_stream", "throughput", "swap", "memory_per_org")):
        return "\n".join(_choices_markdown(r)) + "\n"  # a partial run with nothing to merge into
    ss, tp, sw, mem = r["single_stream"], r["throughput"], r["swap"], r["memory_per_org"]
    m = r["machine"]
    lines = [
        f"Serving on `{r['base']}` in {r.get('serve_dtype', 'float32')} "
        f"(`--dtype {r.get('dtype_option', 'auto')}`), "
        f"{m['cpu_count']} CPU cores, {m['torch_threads']} torch thread(s), "
        f"load average {m['load_avg_at_start'][0]:.1f} at start (shared machine); "
        f"{r['tokens_per_stream']} tokens per stream, greedy, prompt {ss['prompt_tokens']} tokens.",
        "",
        "| measure | bare base | with org memory | ratio (target) |",
        "|---|---|---|---|",
        f"| time to first token | {ss['base']['ttft_ms']:.0f} ms | {ss['memory']['ttft_ms']:.0f} ms | "
        f"{ss['ratio_memory_to_base']['ttft']:.3f} (≤ 1.1) |",
        f"| per token, single stream | {_rate(ss['base'])} | {_rate(ss['memory'])} | "
        f"{ss['ratio_memory_to_base']['per_token']:.3f} (≤ 1.1) |",
        f"| `model.generate` reference, same run | {ss['hf_generate_base_tokens_per_s']:.1f} tok/s | | |",
        f"| `model.generate`, fp32 base, same run | "
        f"{r.get('hf_generate_fp32_base_tokens_per_s', 0):.1f} tok/s | | |",
        "",
        "| streams | orgs | aggregate tok/s | max batch |",
        "|---|---|---|---|",
    ]
    for key, row in tp.items():
        if isinstance(row, dict):
            streams, _, orgs, _ = key.split("_")
            lines.append(f"| {streams} | {orgs} | {row['aggregate_tokens_per_s']:.1f} | {row['max_batch']} |")
    lines += [
        "",
        f"16 streams of 16 different orgs vs 1 stream: {tp['speedup_16_streams_16_orgs_vs_1']:.2f}x "
        "(target ≥ 4x).",
        f"Swap (first request after a pin: store read + sha256 + build): median "
        f"{sw['cold_load_ms_median']:.0f} ms, max {sw['cold_load_ms_max']:.0f} ms (target < 1 s).",
        f"Memory per additional org: {mem['weight_bytes_per_org'] / 1e6:.1f} MB of weights, "
        f"RSS +{mem['rss_growth_per_org'] / 1e6:.1f} MB per org ({mem['orgs_loaded']} loaded).",
        *_choices_markdown(r),
    ]
    return "\n".join(lines) + "\n"


SECTIONS = ("single_stream", "swap", "memory_per_org", "throughput", "choices")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="smollm2-135m-instruct")
    parser.add_argument("--tokens", type=int, default=64, help="Completion tokens per stream.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's).")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"],
                        help="Serving dtype of the base (ORGMEM_SERVE_DTYPE); auto = what a server picks.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"Comma-separated subset of {','.join(SECTIONS)}; the others are kept from "
                        "--out.")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    sections = set(args.sections.split(","))
    if not sections <= set(SECTIONS):
        raise SystemExit(f"unknown sections {sorted(sections - set(SECTIONS))}; choose from {SECTIONS}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)
    from orgmem.models import load_base
    from orgmem.models.precision import serving_dtype

    t0 = time.perf_counter()
    base = load_base(args.base, device="cpu")  # fp32: what training uses and memories are made on
    load_s = time.perf_counter() - t0
    many_orgs = bool(sections & {"swap", "memory_per_org", "throughput"})
    memories = [make_memory(base, i) for i in range(16 if many_orgs else 1)]
    dtype = serving_dtype(args.dtype, base.device)
    timed_generate = "single_stream" in sections  # the reference loops belong to that section
    prompt0 = prompt_ids(base.tokenizer, 0)
    fp32_generate = hf_generate_rate(base, prompt0, args.tokens) if timed_generate else 0.0
    base.model.to(dtype)
    base.dtype = dtype
    with tempfile.TemporaryDirectory() as tmp:
        rss0 = rss_bytes()
        served_generate = hf_generate_rate(base, prompt0, args.tokens) if timed_generate else 0.0
        state, identities = build_deployment(base, memories, Path(tmp))
        result = {
            "base": args.base, "base_load_s": load_s, "tokens_per_stream": args.tokens,
            "serve_dtype": str(dtype).removeprefix("torch."), "dtype_option": args.dtype,
            "hf_generate_fp32_base_tokens_per_s": fp32_generate,
            "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                        "load_avg_at_start": os.getloadavg(), "python": platform.python_version(),
                        "torch": torch.__version__},
            "rss_after_setup_bytes": rss0,
        }

        def measure() -> None:  # the clients, on a helper thread; the engine decodes on this one
            try:
                while not state.ready:  # the engine loop starts on the main thread
                    time.sleep(0.01)
                if "single_stream" in sections:
                    result["single_stream"] = single_stream(state, identities, args.tokens, args.repeats)
                    result["single_stream"]["hf_generate_base_tokens_per_s"] = served_generate
                if "swap" in sections:
                    result["swap"] = swap_times(state, identities, 8)
                if "memory_per_org" in sections:
                    result["memory_per_org"] = memory_per_org(state, identities)
                if "throughput" in sections:
                    result["throughput"] = throughput(state, identities, args.tokens)
                if "choices" in sections:
                    result["choices"] = choices(state, identities, args.tokens, args.repeats)
                    result["choices"]["tokens_per_choice"] = args.tokens
                    result["choices"]["machine"] = result["machine"]
                    result["choices"]["command"] = " ".join(["benchmarks/serving.py", *argv])
                result["measured"] = True
            finally:
                state.stop()

        clients = threading.Thread(target=measure, name="bench-clients")
        clients.start()
        state.run_engine_here(should_stop=lambda: not clients.is_alive())
        clients.join()
        if not result.pop("measured", False):
            raise SystemExit("the measurement thread failed (see its traceback above)")
    result["machine"]["load_avg_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result["command"] = " ".join(["benchmarks/serving.py", *argv])
    if sections != set(SECTIONS) and args.out.exists():  # a partial run: keep the other sections' results
        kept = json.loads(args.out.read_text())
        result = {**kept, **{name: result[name] for name in sections}}
    args.out.write_text(json.dumps(result, indent=2))
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
