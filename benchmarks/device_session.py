"""One prepared session on a lent GPU: the measurements the 2-core CPU machine cannot afford.

1. A CMS recipe sweep: night 1 of the knowledge corpus (43 facts) per recipe, exactly what
   ``knowledge_tune.py`` measures on CPU, in fp32 so its rows compare with the CPU log.
2. Titans: meta-train the base's Titans memory for a time budget and report the
   written-vs-shuffled gap before and after (13 CPU minutes did not make it recall:
   ``docs/knowledge_tuning.md``);
   then write night 1 into a Titans memory with that initialisation and measure recall.
3. The full two-night benchmark row (``knowledge.py``'s metrics) for the best recipes.

A lease can end at any moment, so every result is appended under ``--out`` as soon as it exists,
and each run is skipped when the time left is below what the slowest run of its type took.

    python benchmarks/device_session.py --out $OUT --budget 450 --gguf SmolLM2-135M-Instruct.Q4_1.gguf
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent
T0 = time.time()

MID = list(range(12, 20))
ALL = list(range(30))
# (name, kind, memory fields over the kind's defaults, engine overrides), most informative first.
RECIPES: list[tuple[str, str, dict, dict]] = [
    ("default", "cms", {}, {}),
    ("e8-cos", "cms", {}, {"epochs": 8, "lr_decay": 0.1}),
    ("mid12-19", "cms", {"layers": MID}, {}),
    ("w256", "cms", {"widths": [256, 32, 32]}, {}),
    ("e8-cos-w256", "cms", {"widths": [256, 32, 32]}, {"epochs": 8, "lr_decay": 0.1}),
    ("mid-e8-cos", "cms", {"layers": MID}, {"epochs": 8, "lr_decay": 0.1}),
    ("all30-w32", "cms", {"layers": ALL, "widths": [32, 8, 8]}, {}),
    ("e12-cos-kl60", "cms", {}, {"epochs": 12, "lr_decay": 0.1, "kl_weight": 60}),
    ("e8-cos-lr2", "cms", {}, {"epochs": 8, "lr_decay": 0.05, "lr_scale": 2}),
    ("early6-13", "cms", {"layers": list(range(6, 14))}, {}),
    ("all30-e8-cos", "cms", {"layers": ALL, "widths": [32, 8, 8]}, {"epochs": 8, "lr_decay": 0.1}),
    ("e16-cos-kl100", "cms", {}, {"epochs": 16, "lr_decay": 0.1, "kl_weight": 100}),
    # Titans with the meta-trained initialisation (a write is one pass: epochs 1).
    ("titans-meta", "titans", {"meta_init": "required"}, {"epochs": 1}),
    ("cms+titans-meta", "cms+titans", {"components": [{"kind": "cms"},
                                                      {"kind": "titans", "meta_init": "required"}]}, {}),
]


def say(msg: str) -> None:
    print(f"[device {time.time() - T0:6.1f}s] {msg}", flush=True)


def left(budget: float) -> float:
    return budget - (time.time() - T0)


def append(out: Path, name: str, row: dict) -> None:
    with (out / name).open("a") as f:
        f.write(json.dumps(row, default=str) + "\n")


def ensure_base(gguf: Path | None) -> None:
    """Convert the carried GGUF once into ``<models_dir>/smollm2-135m-instruct`` (as fetch does)."""
    from orgmem.config import DEFAULT_BASE_MODEL, get_settings
    from orgmem.models.fetch import install_gguf

    final = Path(get_settings().models_dir) / DEFAULT_BASE_MODEL
    if (final / "config.json").exists():
        return
    if gguf is None or not gguf.exists():
        raise SystemExit(f"no base at {final} and no GGUF at {gguf}")
    final.parent.mkdir(parents=True, exist_ok=True)
    install_gguf(gguf, final)


def tune_row(kb, bench, name: str, kind: str, memory: dict, engine: dict, seed: int) -> dict:
    """Night 1 and its evaluation: the row ``knowledge_tune.py`` logs."""
    import knowledge_tune

    row, _ = knowledge_tune.night1_row(kb, bench, name, {"kind": kind, **memory}, engine, seed)
    return {**row, "kind": kind, "memory": memory, "engine": engine}


def full_row(kb, bench, name: str, kind: str, memory: dict, engine: dict, seed: int) -> dict:
    """Both nights and both evaluations: one row of ``knowledge.py``'s table."""
    cfg = dataclasses.replace(bench.cfg, engine=engine)
    row = kb.run_kind(bench.base, bench.nights, bench.probes, bench.reference, kind, seed, cfg,
                      memory={"kind": kind, **memory})
    row["kept_of_learned"] = kb.kept_of_learned(row)
    row["recipe"] = {"name": name, "memory": memory, "engine": engine}
    return row


def titans_phase(base, out: Path, seconds: float) -> dict:
    from orgmem.memory.titans.meta_train import MetaTrainConfig, meta_train

    cfg = MetaTrainConfig(steps=200_000, checkpoint_every=1000)
    result = meta_train(base, config=cfg, max_seconds=seconds, progress=False)
    summary = {"steps": result.steps, "seconds": round(result.seconds, 1), "before": result.before,
               "after": result.after, "device": str(base.device),
               "history": result.history[-50:] if isinstance(result.history, list) else None}
    (out / "titans.json").write_text(json.dumps(summary, indent=1, default=str))
    shutil.copy(result.init_path, out / "titans_init.safetensors")
    return summary


def score(row: dict) -> tuple:
    """Best recipe: most recall among rows that keep perplexity within +3%, then any row."""
    return (row["ppl_ratio"] <= 1.03, row["question"] + row["cloze"], -row["ppl_ratio"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--budget", type=float, default=450.0, help="seconds for everything")
    ap.add_argument("--titans-seconds", type=float, default=110.0)
    ap.add_argument("--full", type=int, default=2, help="recipes measured over both nights at the end")
    ap.add_argument("--full-names", default="", help="recipes measured over both nights (default: best)")
    ap.add_argument("--titans-init", type=Path, default=None,
                    help="a meta-trained Titans initialisation to install for the base")
    ap.add_argument("--gguf", type=Path, default=None)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--base", default="smollm2-135m-instruct", help="tiny-random for a local smoke run")
    ap.add_argument("--quick", action="store_true", help="a few probes (smoke run)")
    ap.add_argument("--only", default="", help="comma-separated recipe names (default: all, in order)")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT.parent))
    import knowledge as kb
    import torch

    if a.base == "smollm2-135m-instruct":
        ensure_base(a.gguf)
    if a.titans_init is not None:
        from orgmem.config import get_settings

        target = Path(get_settings().models_dir) / a.base / "titans_meta" / "init.safetensors"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(a.titans_init, target)
    device = a.device if a.device != "cuda" or torch.cuda.is_available() else "cpu"
    torch.set_num_threads(os.cpu_count() or 1)
    threads = os.cpu_count() or 1
    if os.environ.get("ORGMEM_NIGHTS_JSON"):  # chunked beforehand: the GPU image lacks the splitters
        nights = json.loads(Path(os.environ["ORGMEM_NIGHTS_JSON"]).read_text())
        kb.corpus_chunks = lambda corpus, tokenizer: kb.Nights(**nights)
    bench = kb.start(kb.BenchConfig(base=a.base, quick=a.quick, kinds=["cms"], threads=threads,
                                    device=device))
    env = {"torch": torch.__version__, "device": device, "fingerprint": bench.base.fingerprint,
           "gpu": torch.cuda.get_device_name() if device.startswith("cuda") else None,
           "setup_s": round(time.time() - T0, 1), "commit": kb.git_commit()}
    (a.out / "env.json").write_text(json.dumps(env, indent=1))
    say(f"ready: {env}")

    wanted = [r for r in RECIPES if (r[1] == "cms" and not a.only) or r[0] in a.only.split(",")]
    rows: list[dict] = []
    worst = {"tune": 30.0, "full": 90.0}
    titans_done = False
    for i, (name, kind, memory, engine) in enumerate(wanted):
        if i == 1 and not titans_done and a.titans_seconds > 0 and left(a.budget) > a.titans_seconds + 60:
            titans_done = True
            try:
                say("titans meta-training")
                summary = titans_phase(bench.base, a.out, a.titans_seconds)
                say(f"titans: {summary['steps']} steps in {summary['seconds']} s; "
                    f"before {summary['before']}; after {summary['after']}")
                wanted += [r for r in RECIPES if r[1] != "cms" and r not in wanted]
            except Exception:  # noqa: BLE001 - report it; the sweep goes on
                say("titans phase failed:\n" + traceback.format_exc())
                kb.release_base(bench.base)
        reserve = worst["full"] * min(a.full, 1)
        if left(a.budget) < worst["tune"] + reserve:
            say(f"skipping {name}: {left(a.budget):.0f} s left")
            continue
        t = time.time()
        try:
            row = tune_row(kb, bench, name, kind, memory, engine, 0)
        except Exception:  # noqa: BLE001
            say(f"{name} failed:\n" + traceback.format_exc())
            kb.release_base(bench.base)
            continue
        worst["tune"] = max(worst["tune"], time.time() - t)
        row["wall_s"] = round(time.time() - t, 1)
        rows.append(row)
        append(a.out, "tune.jsonl", row)
        say(f"{name}: cloze {row['cloze']}/{row['n']} question {row['question']}/{row['n']} "
            f"ppl {row['ppl_ratio']} kl {row['kl']} changed {row['changed']} leaks {row['leaks']} "
            f"({row['wall_s']} s)")

    if a.full_names:
        named = {r[0]: r for r in RECIPES}
        best = [dict(zip(("name", "kind", "memory", "engine"), named[n], strict=True))
                for n in a.full_names.split(",")]
    else:
        best = sorted((r for r in rows if r["kind"] == "cms"), key=score, reverse=True)[: a.full]
    for row in best:
        if left(a.budget) < worst["full"]:
            say(f"no time for the full run of {row['name']}")
            break
        t = time.time()
        try:
            full = full_row(kb, bench, row["name"], row["kind"], row["memory"], row["engine"], 0)
        except Exception:  # noqa: BLE001
            say(f"full {row['name']} failed:\n" + traceback.format_exc())
            kb.release_base(bench.base)
            continue
        worst["full"] = max(worst["full"], time.time() - t)
        full.pop("reports", None)
        append(a.out, "full.jsonl", full)
        keys = ("n1_cloze_recall", "n1_question_recall", "cloze_recall", "question_recall", "retention",
                "kept_of_learned", "update_accuracy", "ppl_ratio", "kl", "replies_changed", "leakage")
        say(f"full {row['name']}: " + ", ".join(f"{k}={full.get(k)}" for k in keys))
    say("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
