"""Knowledge benchmark: which memory kind learns an org's documents, keeps them, and updates them
without changing the base's general behaviour?

For each memory kind (cms, titans, cms+titans, lora) and seed, on the same base and the same
step budget: consolidate night 1 of the Skerrow Air corpus (``benchmarks/corpus``), evaluate,
consolidate night 2 continuing from night 1's memory and train state (changed documents replace
their old versions, the rest is replayed), evaluate again. The engine sees only documents; the
probes are for measuring. Writes ``<out>/knowledge.json`` and ``<out>/knowledge.md``.

    python benchmarks/knowledge.py                       # SmolLM2, all kinds, seed 0
    python benchmarks/knowledge.py --base tiny-random --quick
    python benchmarks/knowledge.py --kinds cms,lora --seeds 0,1 --steps 60
    python benchmarks/knowledge.py --baselines-only      # the no-memory rows only (benchmarks/baselines.py)
    python benchmarks/knowledge.py --baselines-only --corpus benchmarks/corpus_real \
        --out benchmarks/results/real

Beside the memory kinds it measures, in the same run with the same answer check, the bare base
closed book, with the probe's oracle chunk in the prompt, and with BM25 top-3 chunks in the prompt
(``benchmarks/baselines.py``), and diagnoses every missed probe (``orgmem.eval.diagnosis``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent
KINDS = ("cms", "titans", "cms+titans", "lora")
QUICK_PROBES = {"night1": 6, "updates": 3, "new2": 3}  # probes kept in --quick

# (metric key, column title, format) of the markdown table, in order.
COLUMNS = [
    ("trainable_params", "trainable", "{:,.0f}"),
    ("n1_cloze_recall", "cloze n1", "{:.0%}"),
    ("n1_question_recall", "question n1", "{:.0%}"),
    ("cloze_recall", "cloze n2", "{:.0%}"),
    ("question_recall", "question n2", "{:.0%}"),
    ("answer_nll", "answer NLL", "{:.2f}"),
    ("retention", "n1 kept", "{:.0%}"),
    ("kept_of_learned", "kept/learned", "{:.0%}"),
    ("update_accuracy", "updates", "{:.0%}"),
    ("update_accuracy_question", "updates (Q)", "{:.0%}"),
    ("ppl_ratio", "ppl ratio", "{:.3f}"),
    ("kl", "KL", "{:.4f}"),
    ("replies_changed", "changed /20", "{:.1f}"),
    ("leakage", "leaks", "{:.1f}"),
    ("tokens_per_s", "train tok/s", "{:.0f}"),
    ("train_seconds", "train s", "{:.0f}"),
    ("checkpoint_bytes", "ckpt MB", "{:.2f}"),
]


@dataclass
class BenchConfig:
    base: str = "smollm2-135m-instruct"
    kinds: list[str] = field(default_factory=lambda: list(KINDS))
    seeds: list[int] = field(default_factory=lambda: [0])
    quick: bool = False
    steps: int | None = None
    threads: int = 1
    out: Path = ROOT / "results"
    corpus: Path = ROOT / "corpus"
    lora_rank: int = 32
    keep: Path | None = None
    render: Path | None = None
    engine: dict = field(default_factory=dict)
    device: str = "cpu"
    baselines: bool = True
    baselines_only: bool = False


def parse_args(argv: list[str] | None = None) -> BenchConfig:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default=BenchConfig.base)
    ap.add_argument("--kinds", default=",".join(KINDS), help="comma-separated memory kinds")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds")
    ap.add_argument("--quick", action="store_true", help="few steps and probes: a smoke run")
    ap.add_argument("--steps", type=int, default=None, help="optimizer steps per night (same for every kind)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    ap.add_argument("--lora-rank", type=int, default=BenchConfig.lora_rank,
                    help="LoRA rank (32 ≈ the default CMS's trainable parameters on SmolLM2)")
    ap.add_argument("--out", type=Path, default=BenchConfig.out)
    ap.add_argument("--corpus", type=Path, default=BenchConfig.corpus)
    ap.add_argument("--keep", type=Path, default=None,
                    help="folder to keep each night's memory.safetensors in (for `orgmem eval --memory`)")
    ap.add_argument("--engine", action="append", default=[], metavar="KEY=VALUE",
                    help="override a ConsolidationConfig field for every kind (e.g. epochs=20); repeatable")
    ap.add_argument("--device", default="cpu",
                    help="cpu | cuda: where to train and evaluate (fp32 either way, so runs compare)")
    ap.add_argument("--render", type=Path, default=None,
                    help="only rebuild the summary and table from this results JSON")
    ap.add_argument("--no-baselines", action="store_true",
                    help="skip the in-context baselines (oracle chunk, BM25 top-3)")
    ap.add_argument("--baselines-only", action="store_true",
                    help="only the base rows: closed book, oracle chunk, BM25 top-3 (no training)")
    a = ap.parse_args(argv)
    kinds = [k.strip() for k in a.kinds.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        ap.error(f"unknown kind(s) {unknown}; choose from {list(KINDS)}")
    steps = a.steps if a.steps is not None else (3 if a.quick else None)
    return BenchConfig(base=a.base, kinds=kinds, seeds=[int(s) for s in a.seeds.split(",")], quick=a.quick,
                       steps=steps, threads=a.threads, out=a.out, corpus=a.corpus, lora_rank=a.lora_rank,
                       keep=a.keep, render=a.render, engine=parse_overrides(a.engine, ap),
                       device=a.device, baselines=not a.no_baselines, baselines_only=a.baselines_only)


def parse_overrides(items: list[str], ap: argparse.ArgumentParser) -> dict:
    """``KEY=VALUE`` pairs; values are JSON when they parse (numbers, booleans), else strings."""
    from orgmem.engine.config import ConsolidationConfig

    fields = set(ConsolidationConfig.__dataclass_fields__) - {"memory", "seed", "max_steps", "num_threads"}
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            ap.error(f"--engine {item!r}: expected KEY=VALUE with KEY one of {sorted(fields)}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


# -- set-up -------------------------------------------------------------------------------------
def missing_kind(kind: str) -> str | None:
    """Why ``kind`` cannot run here (None if it can): every component must be registered."""
    from orgmem.memory.registry import discover_kinds

    try:
        have = set(discover_kinds())
    except Exception as exc:  # noqa: BLE001 - report, do not crash the other kinds
        return f"memory registry unavailable: {exc!r}"
    absent = [part for part in kind.split("+") if part not in have]
    return f"memory kind(s) {absent} not registered (have {sorted(have)})" if absent else None


def memory_spec(kind: str, cfg: BenchConfig):
    """The memory each kind is measured with; LoRA's rank is raised to match CMS's size."""
    if kind == "lora":
        from orgmem.memory import LoraMemoryConfig

        return LoraMemoryConfig(r=cfg.lora_rank, alpha=2 * cfg.lora_rank)
    return kind


def select_probes(probes, quick: bool):
    """All probes, or in --quick a few of each group (an update keeps its night-1 statement)."""
    if not quick:
        return list(probes)

    def group(p) -> str:
        return "night1" if p.night == 1 else ("updates" if p.replaces else "new2")

    counts = dict.fromkeys(QUICK_PROBES, 0)
    kept = []
    for p in probes:
        if counts[group(p)] < QUICK_PROBES[group(p)]:
            kept.append(p)
            counts[group(p)] += 1
    updated = {p.fact for p in kept if group(p) == "updates"}
    return kept + [p for p in probes if p.night == 1 and p.fact in updated and p not in kept]


@dataclass
class Nights:
    """Chunk texts per night: what the engine is given."""

    new1: list[str]
    new2: list[str]
    replay2: list[str]


def corpus_chunks(corpus, tokenizer) -> Nights:
    from orgmem.eval.corpus import chunk_docs

    return Nights(new1=chunk_docs(corpus.delivered(1), tokenizer),
                  new2=chunk_docs(corpus.delivered(2), tokenizer),
                  replay2=chunk_docs(corpus.replay(2), tokenizer))


# -- one run --------------------------------------------------------------------------------------
def evaluate_night(base, memory: bytes | None, probes, night: int, reference, label: str):
    from orgmem.eval import EvalConfig, evaluate
    from orgmem.eval.target import memory_model

    with memory_model(base, memory, source=label) as model:
        return evaluate(model, base.tokenizer, probes, reference=reference, night=night,
                        config=EvalConfig(batch_size=16, progress=True), meta={"run": label})


def run_kind(base, nights: Nights, probes, reference, kind: str, seed: int, cfg: BenchConfig,
             memory=None) -> dict:
    """Night 1, evaluate, night 2 from night 1's state, evaluate: one row of the table.
    ``memory``: a memory spec other than the kind's benchmark default (recipe sweeps)."""
    from orgmem.engine.config import ConsolidationConfig
    from orgmem.engine.consolidation import consolidate

    spec = memory if memory is not None else memory_spec(kind, cfg)
    config = ConsolidationConfig(memory=spec, seed=seed, max_steps=cfg.steps,
                                 num_threads=cfg.threads, **cfg.engine)
    label = f"{kind}/seed{seed}"
    r1 = consolidate(base, None, nights.new1, [], config, log_extra={"run": label})
    rep1 = evaluate_night(base, r1.memory, probes, 1, reference, f"{label}/night1")
    r2 = consolidate(base, r1.memory, nights.new2, nights.replay2, config, train_state=r1.train_state,
                     log_extra={"run": label})
    rep2 = evaluate_night(base, r2.memory, probes, 2, reference, f"{label}/night2")
    if cfg.keep is not None:
        cfg.keep.mkdir(parents=True, exist_ok=True)
        for night, result in ((1, r1), (2, r2)):
            (cfg.keep / f"{kind}-seed{seed}-night{night}.safetensors").write_bytes(result.memory)
    return row_from(kind, seed, rep1, rep2, [r1, r2], base_bytes(base))


def release_base(base) -> None:
    """Detach whatever a failed run left attached, so the next kind starts from the bare base."""
    from orgmem.memory import attached_handle

    handle = attached_handle(base)
    if handle is not None:
        handle.detach()


def base_bytes(base) -> int:
    return sum(p.numel() * p.element_size() for p in base.model.parameters())


def row_from(kind: str, seed: int, rep1, rep2, results, base_size: int) -> dict:
    s1, s2 = rep1.summary(), rep2.summary()
    row = {"kind": kind, "seed": seed, **s2}
    row.update({f"n1_{k}": v for k, v in s1.items()})
    if results:
        m1, m2 = results[0].metrics, results[1].metrics
        row.update({
            "trainable_params": m1.get("trainable_params"),
            "steps": [m1.get("steps"), m2.get("steps")],
            "train_tokens": [m1.get("tokens"), m2.get("tokens")],
            "tokens_per_s": _mean([m1.get("tokens_per_s"), m2.get("tokens_per_s")]),
            "train_seconds": sum(r.seconds for r in results),
            "checkpoint_bytes": len(results[1].memory) / 1e6,
            "checkpoint_share_of_base": len(results[1].memory) / base_size,
            "train_state_bytes": len(results[1].train_state),
            "consolidation": [m1, m2],
        })
    row["eval_seconds"] = rep1.seconds + rep2.seconds
    row["reports"] = {"night1": rep1.to_dict(), "night2": rep2.to_dict()}
    return row


def _mean(values):
    values = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
    return sum(values) / len(values) if values else None


# -- results --------------------------------------------------------------------------------------
def kept_of_learned(row: dict) -> float | None:
    """Of the unchanged night-1 facts recalled (cloze) after night 1, the share still recalled
    after night 2: forgetting measured only on what was learned in the first place."""
    reports = row.get("reports") or {}
    if "night1" not in reports or "night2" not in reports:
        return None
    after = {p["key"]: p["cloze_hit"] for p in reports["night2"]["probes"] if p["group"] == "retained"}
    learned = [p["key"] for p in reports["night1"]["probes"] if p["cloze_hit"] and p["key"] in after]
    return sum(after[k] for k in learned) / len(learned) if learned else None


def probe_info(probes) -> dict[str, dict]:
    """What the diagnosis needs of each probe beyond its report record (kept in the JSON so
    ``--render`` can re-diagnose): accepted strings and the question."""
    return {p.key: {"accepted": list(p.accepted), "question": p.question} for p in probes}


def diagnose_row(row: dict, info: dict[str, dict]) -> None:
    """Annotate each report's probes with their diagnosis and set ``row["diagnosis"]`` to the counts
    per night (see ``orgmem.eval.diagnosis``)."""
    from orgmem.eval.diagnosis import diagnose, diagnosis_counts

    accepted = {k: v["accepted"] for k, v in info.items()}
    counts = {}
    for night, report in (row.get("reports") or {}).items():
        records = [{**p, "question": info.get(p["key"], {}).get("question", "")} for p in report["probes"]]
        diagnosed = diagnose(records, accepted)
        for p, d in zip(report["probes"], diagnosed, strict=True):
            p["diagnosis"], p["other_facts"] = d["diagnosis"], d["other_facts"]
        counts[night] = diagnosis_counts(diagnosed)
    if counts:
        row["diagnosis"] = counts


def diagnosis_lines(rows: list[dict]) -> list[str]:
    """One summary line per kind: mean count of each diagnosis after night 1 and after night 2."""
    from orgmem.eval.diagnosis import DIAGNOSES

    lines = []
    for kind in dict.fromkeys(r["kind"] for r in rows if r.get("diagnosis")):
        group = [r["diagnosis"] for r in rows if r["kind"] == kind and r.get("diagnosis")]
        parts = []
        for night in ("night1", "night2"):
            present = [d[night] for d in group if night in d]
            if not present:
                continue
            means = {n: statistics.fmean(c.get(n, 0) for c in present) for n in DIAGNOSES}
            parts.append(f"{night}: " + ", ".join(f"{n} {v:.3g}" for n, v in means.items() if v))
        lines.append(f"- **{kind}** ({len(group)} run(s)) — " + "; ".join(parts))
    return lines


def aggregate(rows: list[dict]) -> list[dict]:
    """One line per kind: mean (and spread where there are several seeds) of every table metric."""
    for row in rows:
        row["kept_of_learned"] = kept_of_learned(row)
    out = []
    for kind in dict.fromkeys(r["kind"] for r in rows):
        group = [r for r in rows if r["kind"] == kind]
        line = {"kind": kind, "seeds": [r["seed"] for r in group]}
        for key, _, _ in COLUMNS:
            values = [r.get(key) for r in group]
            values = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
            line[key] = statistics.fmean(values) if values else None
            line[f"{key}_sd"] = statistics.stdev(values) if len(values) > 1 else None
        out.append(line)
    return out


def markdown(payload: dict) -> str:
    lines = [f"# Knowledge benchmark ({payload['base']}{', quick' if payload['quick'] else ''})", "",
             f"{payload['n_facts_night1']} night-1 facts, {payload['n_updates']} night-2 updates, "
             f"{payload['n_new_night2']} new night-2 facts; "
             f"steps per night: {payload['steps'] or 'engine default'}; "
             f"engine overrides: {payload.get('engine_overrides') or 'none'}; "
             f"wall time {payload['wall_seconds']:.0f} s on {payload['machine']}; "
             f"code {payload.get('commit') or 'unknown'}.", ""]
    heads = ["kind", "seeds"] + [title for _, title, _ in COLUMNS]
    lines += ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for line in payload["summary"]:
        cells = [line["kind"], str(len(line["seeds"]))]
        for key, _, fmt in COLUMNS:
            v, sd = line.get(key), line.get(f"{key}_sd")
            cells.append("–" if v is None else fmt.format(v) + (f" ± {fmt.format(sd)}" if sd else ""))
        lines.append("| " + " | ".join(cells) + " |")
    for kind, reason in payload["skipped"].items():
        lines.append(f"\nSkipped `{kind}`: {reason}")
    if payload.get("baselines"):
        from benchmarks.baselines import markdown as baseline_table

        lines += ["", "**Baselines** (the bare base, same probes, same answer check; chunks as the engine's "
                  "chunker cuts them; BM25 over all chunks current that night, query = the question):", ""]
        lines += baseline_table(payload["baselines"])
    diag = diagnosis_lines(payload["runs"])
    if diag:
        lines += ["", "**Per-probe diagnosis** (mean probes per run): answered; old_value (an update "
                  "answered with the replaced value); other_fact_value (the reply states another probe's "
                  "answer: interference); stored_not_extractable (cloze hit, question miss); not_stored "
                  "(cloze miss); missed (in-context rows: no cloze).", "", *diag]
    lines += ["", "cloze/question n1: night-1 facts after night 1; n2: every fact true after night 2; "
              "n1 kept: unchanged night-1 facts after night 2 (cloze); kept/learned: the same, counting only "
              "facts recalled after night 1; updates: changed facts answered "
              "with the new value and not the old (cloze / question); KL, ppl ratio, changed replies and "
              "leaks after night 2 on the shipped generic set."]
    return "\n".join(lines) + "\n"


def write_results(cfg: BenchConfig, payload: dict) -> None:
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "knowledge.json").write_text(json.dumps(_finite(payload), indent=2, default=str) + "\n")
    (cfg.out / "knowledge.md").write_text(markdown(payload))


def _finite(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


# -- main -----------------------------------------------------------------------------------------
@dataclass
class Session:
    """Everything one benchmark invocation shares between runs."""

    cfg: BenchConfig
    base: object
    probes: list
    nights: Nights
    reference: object
    t0: float
    rows: list[dict] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    baselines: dict | None = None

    def add_baselines(self) -> None:
        """The in-context baselines (``benchmarks/baselines.py``) as rows beside the memory kinds."""
        from benchmarks.baselines import baseline_rows, run_baselines

        self.baselines = run_baselines(self)
        for row in baseline_rows(self.baselines):
            row["reports"] = {night: {"probes": r["probes"]} for night, r in
                              self.baselines["conditions"][row["baseline"]].items()}
            self.rows.append(row)

    def payload(self) -> dict:
        cfg, probes, nights = self.cfg, self.probes, self.nights
        return {
            "base": cfg.base, "base_fingerprint": self.base.fingerprint, "quick": cfg.quick,
            "steps": cfg.steps, "engine_overrides": cfg.engine, "seeds": cfg.seeds, "threads": cfg.threads,
            "lora_rank": cfg.lora_rank,
            "n_facts_night1": sum(p.night == 1 for p in probes),
            "n_updates": sum(p.night == 2 and bool(p.replaces) for p in probes),
            "n_new_night2": sum(p.night == 2 and not p.replaces for p in probes),
            "chunks": {"night1": len(nights.new1), "night2": len(nights.new2),
                       "replay2": len(nights.replay2)},
            "machine": machine(cfg),
            "commit": git_commit(), "wall_seconds": time.time() - self.t0, "skipped": self.skipped,
            "probe_info": probe_info(probes), "baselines": self.baselines,
            "summary": aggregate(self.rows), "runs": self.rows,
        }

    def save(self) -> dict:
        """Written after every run, so an interrupted benchmark keeps what it measured."""
        info = probe_info(self.probes)
        for row in self.rows:
            diagnose_row(row, info)
        payload = self.payload()
        write_results(self.cfg, payload)
        return payload


def machine(cfg: BenchConfig) -> str:
    import torch

    if cfg.device.startswith("cuda"):
        return f"{torch.cuda.get_device_name()} (fp32), {os.cpu_count()} cpu"
    return f"{platform.machine()} {os.cpu_count()} cpu, {cfg.threads} torch thread(s)"


def git_commit() -> str | None:
    """The code measured (best effort: None outside a git checkout)."""
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True)
    except OSError:
        return None
    return out.stdout.strip() or None


def start(cfg: BenchConfig) -> Session:
    import torch

    from orgmem.eval import get_reference
    from orgmem.eval.corpus import load_corpus
    from orgmem.models import load_base

    t0 = time.time()
    torch.set_num_threads(cfg.threads)
    corpus = load_corpus(cfg.corpus)
    problems = corpus.check()
    if problems:
        raise SystemExit("corpus and probes disagree:\n" + "\n".join(problems))
    base = load_base(cfg.base, device=cfg.device, dtype=torch.float32)
    reference = get_reference(base.model, base.tokenizer, base.fingerprint, progress=True)
    return Session(cfg, base, select_probes(corpus.probes, cfg.quick), corpus_chunks(corpus, base.tokenizer),
                   reference, t0)


def run(cfg: BenchConfig) -> dict:
    bench = start(cfg)
    base, probes, reference = bench.base, bench.probes, bench.reference
    bench.rows.append(row_from("base", 0, evaluate_night(base, None, probes, 1, reference, "base/night1"),
                               evaluate_night(base, None, probes, 2, reference, "base/night2"), [],
                               base_bytes(base)))
    bench.save()
    if cfg.baselines or cfg.baselines_only:
        bench.add_baselines()
        bench.save()
    if cfg.baselines_only:
        return bench.save()
    for kind in cfg.kinds:
        reason = missing_kind(kind)
        if reason:
            print(f"skipping {kind}: {reason}", file=sys.stderr)
            bench.skipped[kind] = reason
            continue
        for seed in cfg.seeds:
            print(f"== {kind} seed {seed}", file=sys.stderr, flush=True)
            try:
                bench.rows.append(run_kind(base, bench.nights, probes, reference, kind, seed, cfg))
            except Exception as exc:  # noqa: BLE001 - one kind failing must not lose the others' rows
                print(f"{kind} seed {seed} failed: {exc!r}", file=sys.stderr)
                bench.skipped[f"{kind}/seed{seed}"] = f"failed: {exc!r}"
                release_base(base)
            bench.save()
    return bench.save()


def rerender(cfg: BenchConfig, path: Path) -> dict:
    """Recompute summaries and tables from a results JSON (no model runs)."""
    payload = json.loads(path.read_text())
    if not payload.get("probe_info") and (cfg.corpus / "probes.jsonl").is_file():
        from orgmem.eval.probes import load_probes  # results written before probe_info was stored

        payload["probe_info"] = probe_info(load_probes(cfg.corpus / "probes.jsonl"))
    for row in payload["runs"]:
        diagnose_row(row, payload.get("probe_info") or {})
    if payload.get("baselines"):
        from benchmarks.baselines import rediagnose

        rediagnose(payload["baselines"], {k: v["accepted"] for k, v in payload["probe_info"].items()})
    payload["summary"] = aggregate(payload["runs"])
    write_results(cfg, payload)
    return payload


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    payload = rerender(cfg, cfg.render) if cfg.render else run(cfg)
    print(markdown(payload))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT.parent))
    raise SystemExit(main())
