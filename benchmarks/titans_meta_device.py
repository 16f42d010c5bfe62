"""One prepared GPU session for Titans (issue 19): curriculum meta-training, then night 1.

1. Meta-train the base's Titans memory on night-shaped episodes, short to night-sized
   (``MetaTrainConfig.curriculum_tokens``), with the generic-text KL term, for ``--meta-seconds``;
   write ``titans_meta.json`` (before / after on held-out night-sized episodes, the history's
   tail, the settings) and ``titans_meta_init.safetensors`` (the initialisation; its metadata
   carries the base fingerprint, repeated in the JSON).
2. Night 1 of the knowledge corpus with that initialisation (``benchmarks/titans_night.py``):
   ``titans`` (one pass of writes), ``cms`` and ``cms+titans-write`` rows with recall, drift and
   consolidation seconds, appended to ``titans_night1.jsonl`` as each finishes.
3. If time is left, conversation memory (``benchmarks/titans_conversation.py``): facts told more
   than a window earlier, truncated vs with the memory, and the per-token cost ->
   ``titans_conversation.json``.

Every result lands under ``--out`` as soon as it exists (a lease can end at any moment).

    python benchmarks/titans_meta_device.py --out $OUT --gguf SmolLM2-135M-Instruct.Q4_1.gguf \\
        --meta-seconds 420 --budget 600
    python benchmarks/titans_meta_device.py --out /tmp/x --base tiny-random --device cpu --quick \\
        --meta-seconds 20 --budget 200                                   # local smoke run
"""

from __future__ import annotations

import argparse
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

# Sized for one 15-minute lease. The memory scan is sequential over 16-token chunks (the GPU run
# of docs/gpu_session.md took 0.14 s per step on ~200-token episodes), so a step costs roughly in
# proportion to the write length: 150 short steps, 80 at 2k tokens and the rest at 8k fit ~400 s.
# A full curriculum (16k-token stage, thousands of steps) needs a longer lease:
# --curriculum-tokens 512,2048,8192,16384 --curriculum-steps 2000,2000,2000 --curriculum-batch 16,8,4,2.
GPU_CURRICULUM = {"curriculum_tokens": (512, 2048, 8192), "curriculum_steps": (150, 80),
                  "curriculum_batch": (16, 8, 4), "bank_size": 64, "bank_refresh": 200,
                  "eval_episodes": 16, "checkpoint_every": 50}
QUICK_CURRICULUM = {"curriculum_tokens": (96, 256), "curriculum_steps": (2,), "curriculum_batch": (3, 2),
                    "bank_size": 4, "bank_refresh": 2, "eval_episodes": 3, "window_tokens": 64,
                    "generic_items": 4, "checkpoint_every": 2}


def say(msg: str) -> None:
    print(f"[titans-device {time.time() - T0:6.1f}s] {msg}", flush=True)


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def meta_phase(base, out: Path, seconds: float, a: argparse.Namespace) -> Path:
    from orgmem.memory.titans.meta_train import MetaTrainConfig, meta_train

    settings = dict(QUICK_CURRICULUM if a.quick else GPU_CURRICULUM)
    for name in ("curriculum_tokens", "curriculum_steps", "curriculum_batch"):
        if getattr(a, name) is not None:
            settings[name] = _ints(getattr(a, name))
    cfg = MetaTrainConfig(steps=200_000, **settings)
    result = meta_train(base, config=cfg, max_seconds=seconds, progress=False, out_dir=out / "titans_meta")
    summary = {"steps": result.steps, "seconds": round(result.seconds, 1), "before": result.before,
               "after": result.after, "device": str(base.device), "base_fingerprint": base.fingerprint,
               "settings": cfg.stream_fields(), "history": result.history[-60:],
               "stage_last_steps": {h["stage"]: {k: h[k] for k in ("step", "gap", "kl_generic", "loss")
                                                 if k in h} for h in result.history}}
    (out / "titans_meta.json").write_text(json.dumps(summary, indent=1, default=str))
    init = out / "titans_meta_init.safetensors"
    shutil.copy(result.init_path, init)
    return init


def night_phase(a: argparse.Namespace, init: Path, out: Path) -> None:
    import titans_night

    argv = ["--base", a.base, "--device", a.device, "--threads", str(os.cpu_count() or 1),
            "--titans-init", str(init), "--out", str(out / "titans_night1.jsonl"),
            "--only", a.night_runs]
    if a.quick:
        argv.append("--quick")
    titans_night.main(argv)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--budget", type=float, default=600.0, help="seconds for everything")
    ap.add_argument("--meta-seconds", type=float, default=420.0)
    ap.add_argument("--gguf", type=Path, default=None)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--base", default="smollm2-135m-instruct")
    ap.add_argument("--quick", action="store_true", help="tiny curriculum and few probes (smoke run)")
    ap.add_argument("--night-runs", default="titans,cms,cms+titans-write")
    ap.add_argument("--conversation-n", type=int, default=20, help="conversations (0: skip)")
    for name in ("tokens", "steps", "batch"):
        ap.add_argument(f"--curriculum-{name}", default=None, help="comma-separated, overrides the default")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT.parent))
    import torch
    from device_session import ensure_base

    from orgmem.models import load_base

    if a.base == "smollm2-135m-instruct":
        ensure_base(a.gguf)
    if a.device == "cuda" and not torch.cuda.is_available():
        a.device = "cpu"
    torch.set_num_threads(os.cpu_count() or 1)
    base = load_base(a.base, device=a.device, dtype=torch.float32)
    env = {"torch": torch.__version__, "device": a.device, "fingerprint": base.fingerprint,
           "gpu": torch.cuda.get_device_name() if a.device.startswith("cuda") else None}
    (a.out / "titans_env.json").write_text(json.dumps(env, indent=1))
    say(f"ready: {env}")
    seconds = min(a.meta_seconds, max(a.budget - (time.time() - T0) - 150, 10))
    try:
        init = meta_phase(base, a.out, seconds, a)
        say(f"meta-training done: {json.loads((a.out / 'titans_meta.json').read_text())['after']}")
    except Exception:  # noqa: BLE001 - report it; nothing else can run without an init
        say("meta-training failed:\n" + traceback.format_exc())
        return 1
    del base
    try:
        night_phase(a, init, a.out)
    except Exception:  # noqa: BLE001 - the conversation run may still fit
        say("night 1 failed:\n" + traceback.format_exc())
    if a.budget - (time.time() - T0) > 60 and a.conversation_n > 0:
        import titans_conversation

        try:
            titans_conversation.main(["--base", a.base, "--device", a.device, "--titans-init", str(init),
                                      "--n", str(a.conversation_n), "--threads", str(os.cpu_count() or 1),
                                      "--out", str(a.out / "titans_conversation.json")]
                                     + (["--window", "64"] if a.quick else []))
        except Exception:  # noqa: BLE001
            say("conversation memory failed:\n" + traceback.format_exc())
    say("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
