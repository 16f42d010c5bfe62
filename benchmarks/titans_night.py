"""Titans consolidation by writing, against CMS training, on the same night.

Three ways to consolidate night 1 of the knowledge corpus (``benchmarks/corpus``):

- ``titans``: one pass of writes over the night's chunks (``orgmem.memory.titans.write_pass``):
  no loss, no backpropagation;
- ``cms``: the engine's default training (``orgmem.engine.consolidation``);
- ``cms+titans-write``: Titans writes the night first, then CMS trains with the Titans memory
  attached read-only (Titans the fast level, CMS consolidating beneath it). The registry's plain
  ``cms+titans`` kind trained by the engine instead writes every training row, every epoch,
  rehearsal text included (measured as ``cms+titans-engine`` with ``--engine-combo``).

``--timing`` measures only the consolidation seconds (CPU-sized: ``--chunks`` of the night);
without it every row is evaluated like ``knowledge_tune.py``'s night-1 rows (recall, drift).

    python benchmarks/titans_night.py --timing --chunks 8 --threads 1          # CPU: seconds, ratio
    python benchmarks/titans_night.py --titans-init init.safetensors --device cuda  # GPU: full rows
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent


def titans_memory(base, chunks: list[str], spec) -> tuple[bytes, float, dict]:
    """Attach ``spec``, write the night, return (memory bytes, seconds, write stats)."""
    from orgmem.memory import attach, save_memory
    from orgmem.memory.titans.write_pass import write_night

    with attach(base, spec) as handle:
        stats = write_night(base, handle, chunks)
        return save_memory(handle), stats["seconds"], stats


def combo_memory(base, chunks: list[str], titans: dict, seed: int, threads: int) -> tuple[bytes, float, dict]:
    """Titans writes the night, then CMS trains beneath it with the Titans memory read-only."""
    from orgmem.engine.config import ConsolidationConfig
    from orgmem.engine.consolidation import Consolidator
    from orgmem.memory import attach
    from orgmem.memory.titans.write_pass import titans_components, write_night

    t0 = time.time()
    with attach(base, {"kind": "cms+titans", "components": [{"kind": "cms"}, {"kind": "titans", **titans}]}
                ) as handle:
        stats = write_night(base, handle, chunks)
        t_write = time.time() - t0
        cons = Consolidator(base, handle, ConsolidationConfig(seed=seed, num_threads=threads))
        (memory,) = titans_components(handle)
        with memory.no_write():
            metrics = cons.run(chunks, progress=False)
        return cons.memory_bytes(), time.time() - t0, {**stats, "write_seconds": t_write,
                                                       "cms_steps": metrics.get("steps")}


def cms_memory(base, chunks: list[str], spec, seed: int, threads: int) -> tuple[bytes, float, dict]:
    from orgmem.engine.config import ConsolidationConfig
    from orgmem.engine.consolidation import consolidate

    config = ConsolidationConfig(memory=spec, seed=seed, num_threads=threads)
    result = consolidate(base, None, chunks, [], config, progress=False)
    m = result.metrics
    return result.memory, result.seconds, {"steps": m.get("steps"), "tokens": m.get("tokens"),
                                           "seconds_prepare": m.get("seconds_prepare")}


def evaluate_row(kb, bench, name: str, memory: bytes, seconds: float, extra: dict) -> dict:
    probes = [p for p in bench.probes if p.night == 1]
    t = time.time()
    s = kb.evaluate_night(bench.base, memory, probes, 1, bench.reference, name).summary()
    return {"name": name, "cloze": round(s["cloze_recall"] * len(probes)),
            "question": round(s["question_recall"] * len(probes)), "n": len(probes),
            "ppl_ratio": round(s["ppl_ratio"], 4), "kl": round(s["kl"], 5), "changed": s["replies_changed"],
            "leaks": s["leakage"], "seconds": round(seconds, 2), "eval_s": round(time.time() - t, 1), **extra}


def install_init(base_name: str, path: Path) -> None:
    from orgmem.config import get_settings

    target = Path(get_settings().models_root) / base_name / "titans_meta" / "init.safetensors"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, target)


class _Timing:
    """What ``--timing`` needs of a benchmark session: the base and night 1 (no eval reference)."""

    def __init__(self, kb, a: argparse.Namespace) -> None:
        import torch

        from orgmem.eval.corpus import load_corpus
        from orgmem.models import load_base

        self.base = load_base(a.base, device=a.device, dtype=torch.float32)
        self.nights = kb.corpus_chunks(load_corpus(kb.BenchConfig().corpus), self.base.tokenizer)


def run(a: argparse.Namespace) -> list[dict]:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT.parent))
    import knowledge as kb
    import torch

    torch.set_num_threads(a.threads)
    if a.titans_init is not None:
        install_init(a.base, a.titans_init)
    if a.nights_json:  # chunked beforehand (an image without the splitters)
        kb.corpus_chunks = lambda corpus, tokenizer: kb.Nights(**json.loads(Path(a.nights_json).read_text()))
    bench = _Timing(kb, a) if a.timing else kb.start(
        kb.BenchConfig(base=a.base, quick=a.quick, kinds=["cms"], threads=a.threads, device=a.device))
    chunks = bench.nights.new1[: a.chunks] if a.chunks else bench.nights.new1
    titans = {"meta_init": "required" if a.titans_init else "auto"}
    combo = {"kind": "cms+titans", "components": [{"kind": "cms"}, {"kind": "titans", **titans}]}
    runs = {
        "titans": lambda: titans_memory(bench.base, chunks, {"kind": "titans", **titans}),
        "cms": lambda: cms_memory(bench.base, chunks, "cms", a.seed, a.threads),
        "cms+titans-write": lambda: combo_memory(bench.base, chunks, titans, a.seed, a.threads),
        "cms+titans-engine": lambda: cms_memory(bench.base, chunks, combo, a.seed, a.threads),
    }
    names = a.only.split(",") if a.only else ["titans", "cms", "cms+titans-write"] + (
        ["cms+titans-engine"] if a.engine_combo else [])
    rows = []
    for name in names:
        memory, seconds, extra = runs[name]()
        extra.pop("seconds", None)
        row = ({"name": name, "seconds": round(seconds, 2), **extra} if a.timing
               else evaluate_row(kb, bench, name, memory, seconds, extra))
        row |= {"chunks": len(chunks), "device": str(bench.base.device), "threads": a.threads}
        rows.append(row)
        print(json.dumps(row), flush=True)
        if a.out:
            a.out.parent.mkdir(parents=True, exist_ok=True)
            with a.out.open("a") as f:
                f.write(json.dumps(row, default=str) + "\n")
    by = {r["name"]: r["seconds"] for r in rows}
    if "titans" in by and "cms" in by:
        print(json.dumps({"titans_over_cms_seconds": round(by["titans"] / by["cms"], 4)}), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="smollm2-135m-instruct")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--chunks", type=int, default=0, help="first N chunks of night 1 (0: all)")
    ap.add_argument("--timing", action="store_true", help="seconds only, no evaluation")
    ap.add_argument("--engine-combo", action="store_true", help="also the engine-trained cms+titans")
    ap.add_argument("--only", default="", help="comma-separated run names")
    ap.add_argument("--titans-init", type=Path, default=None)
    ap.add_argument("--nights-json", default=os.environ.get("ORGMEM_NIGHTS_JSON"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="append rows (JSON lines)")
    run(ap.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
