"""Quick recipe check for knowledge tuning: night 1 of the benchmark corpus only, one seed.

Why: the full two-night benchmark of four kinds takes close to an hour on this machine; a recipe
change is first judged here (cloze / question recall on night-1 facts, generic drift, seconds),
and only the survivors go to ``benchmarks/knowledge.py``. Appends one JSON line per run to
``--log`` so the tuning table in ``docs/knowledge_tuning.md`` can be rebuilt from it.

    python benchmarks/knowledge_tune.py --name default
    python benchmarks/knowledge_tune.py --name lr2x --engine lr_scale=2 --memory '{"gate_bias": -2}'
    python benchmarks/knowledge_tune.py --table          # the log as the markdown tuning table
    python benchmarks/knowledge_tune.py --baselines      # night-1 no-memory rows (closed book, oracle, BM25)
    python benchmarks/knowledge_tune.py --name default --corpus benchmarks/corpus_real   # the real corpus

Each logged row carries the per-probe diagnosis counts of its misses (``orgmem.eval.diagnosis``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def table(log: Path) -> str:
    """The log as a markdown table: recipe -> recall, drift, cost (load average at start/end)."""
    lines = ["| recipe | cloze | question | ppl ratio | KL | changed /20 | leaks | steps | train s | tok/s "
             "| load |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for raw in log.read_text().splitlines():
        r = json.loads(raw)
        lines.append(f"| {r['name']} | {r['cloze']}/{r['n']} | {r['question']}/{r['n']} | "
                     f"{r['ppl_ratio']:.3f} | "
                     f"{r['kl']:.4f} | {r['changed']} | {r['leaks']} | {r['steps']} | {r['seconds']:.0f} | "
                     f"{r['tok_s']:.0f} | {r['load_start']:.1f}–{r['load_end']:.1f} |")
    return "\n".join(lines)


def night1_row(kb, bench, name: str, memory, engine: dict, seed: int) -> tuple[dict, object]:
    """Consolidate night 1 into a fresh ``memory`` and evaluate every night-1 fact: the logged row
    (recall counts, drift, cost) and the evaluation report."""
    from orgmem.engine.config import ConsolidationConfig
    from orgmem.engine.consolidation import consolidate

    probes = [p for p in bench.probes if p.night == 1]
    config = ConsolidationConfig(memory=memory, seed=seed, **engine)
    r1 = consolidate(bench.base, None, bench.nights.new1, [], config, progress=False)
    t_eval = time.time()
    rep = kb.evaluate_night(bench.base, r1.memory, probes, 1, bench.reference, name)
    s = rep.summary()
    row = {"name": name, "seed": seed,
           "cloze": round(s["cloze_recall"] * len(probes)),
           "question": round(s["question_recall"] * len(probes)), "n": len(probes),
           "ppl_ratio": round(s["ppl_ratio"], 4), "kl": round(s["kl"], 5),
           "changed": s["replies_changed"], "leaks": s["leakage"], "answer_nll": round(s["answer_nll"], 3),
           "seconds": round(r1.seconds, 1), "steps": r1.metrics["steps"], "tokens": r1.metrics["tokens"],
           "tok_s": r1.metrics["tokens_per_s"], "eval_s": round(time.time() - t_eval, 1),
           "loss_last": r1.metrics["loss_last"], "ckpt_mb": round(len(r1.memory) / 1e6, 2),
           "device": str(bench.base.device), "q_misses": [p.key for p in rep.probes if not p.question_hit],
           "diagnosis": diagnosis_of(rep, probes)}
    return row, rep


def diagnosis_of(rep, probes) -> dict[str, int]:
    """Counts of answered / not stored / stored-not-extractable / another fact's value."""
    from dataclasses import asdict

    from orgmem.eval.diagnosis import diagnose, diagnosis_counts

    question = {p.key: p.question for p in probes}
    records = [{**asdict(r), "question": question.get(r.key, "")} for r in rep.probes]
    return diagnosis_counts(diagnose(records, {p.key: p.accepted for p in probes}))


def baselines_night1(bench) -> list[dict]:
    """The no-memory rows on night 1 (``benchmarks/baselines.py``), one summary dict per baseline."""
    from benchmarks.baselines import run_baselines

    result = run_baselines(bench, nights=(1,))
    return [{"baseline": name, "question": r["hits"], "n": r["n"],
             "oracle_in_context": r["oracle_in_context"], "prompt_tokens": round(r["prompt_tokens_mean"]),
             "diagnosis": r["diagnosis"],
             "seconds": round(r["seconds"], 1)}
            for name, nights in result["conditions"].items() for r in [nights["night1"]]]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--name", help="label of the recipe in the log")
    ap.add_argument("--table", action="store_true", help="print the log as a markdown table and exit")
    ap.add_argument("--kind", default="cms")
    ap.add_argument("--memory", default="{}", help="JSON of memory config fields (over the kind's defaults)")
    ap.add_argument("--engine", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dump", type=Path, default=None, help="write each probe's completion and reply here")
    ap.add_argument("--log", type=Path, default=ROOT / "results" / "knowledge_tune.jsonl")
    ap.add_argument("--corpus", type=Path, default=ROOT / "corpus", help="corpus folder (load_corpus layout)")
    ap.add_argument("--baselines", action="store_true",
                    help="print the night-1 baselines (closed book, oracle chunk, BM25 top-3); not logged")
    a = ap.parse_args(argv)
    if a.table:
        print(table(a.log))
        return 0
    if not a.name and not a.baselines:
        ap.error("--name is required for a run")

    import knowledge as kb
    import torch

    cfg = kb.BenchConfig(base="smollm2-135m-instruct", kinds=[a.kind], threads=a.threads, corpus=a.corpus)
    engine = {k: _value(v) for k, _, v in (e.partition("=") for e in a.engine)}
    bench = kb.start(cfg)
    if a.baselines:
        for line in baselines_night1(bench):
            print(json.dumps(line))
        if not a.name:
            return 0
    memory = {"kind": a.kind, **json.loads(a.memory)} if a.kind != "lora" else kb.memory_spec("lora", cfg)
    load = os.getloadavg()[0]
    row, rep = night1_row(kb, bench, a.name, memory, {**engine, "num_threads": a.threads}, a.seed)
    row.update({"kind": a.kind, "memory": json.loads(a.memory), "engine": engine,
                "load_start": round(load, 2), "load_end": round(os.getloadavg()[0], 2),
                "threads": torch.get_num_threads()})
    if a.dump:
        a.dump.write_text(json.dumps([{"key": p.key, "cloze": p.cloze_completion, "reply": p.reply,
                                       "hit": [p.cloze_hit, p.question_hit]} for p in rep.probes], indent=1))
    a.log.parent.mkdir(parents=True, exist_ok=True)
    with a.log.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT.parent))
    raise SystemExit(main())
