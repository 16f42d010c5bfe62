"""Export round trip on a real base: ``orgmem export`` -> plain transformers (and peft) -> logits.

For each memory kind, a memory with seeded random weights (on top of its attach-time values) is
committed as an org's served checkpoint, exported with the real CLI (``orgmem export ORG DIR
--json``), loaded with ``AutoModelForCausalLM.from_pretrained(DIR, trust_remote_code=True)``, and
compared with what orgmem serves: the shared base with the memory routed onto the rows
(``MemoryRouter``) for the logits, the batched ``GenerationEngine`` for the greedy reply. Both in
float32 (orgmem's CPU default for training; serving's float32 setting) and in bfloat16 (serving's
``auto`` dtype on a CPU with native bf16 or a GPU), the latter as loaded and with
``orgmem_rope_in_model_dtype=True`` (RoPE's buffer rounded to bf16 as orgmem's loader rounds it).
``lora`` also goes through ``--format peft``
and ``peft.PeftModel.from_pretrained``. Writes benchmarks/results/export_roundtrip.json and .md.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/export_roundtrip.py --threads 1

Reported: max |delta logit| over the prompts (and the memory's own effect, max |served - bare|, so
a zero delta means something), and whether greedy ``generate`` repeated the engine's tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import threading
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results" / "export_roundtrip.json"
KINDS = ["cms", "lora", "titans", "cms+titans", "cms+lora"]
QUESTIONS = ["Who leads the payments team?", "Which port does the billing service listen on?",
             "Summarise our on-call policy in two sentences."]


def perturbed(base, spec: str, seed: int, scale: float) -> bytes:
    from orgmem.memory import attach, save_memory

    gen = torch.Generator().manual_seed(seed)
    with attach(base, spec) as handle:
        state = {k: v + scale * torch.randn(v.shape, generator=gen)
                 for k, v in handle.memory_state_dict().items()}
        # Titans reads through gate_scale, zero until meta-training opens it, and its memory MLP
        # (the org's written state) starts reading zero: open the gate and write noise 0.3 (as the
        # tests do), so the read is visible in the logits
        state |= {k: torch.ones_like(v) for k, v in state.items() if k.endswith("meta.gate_scale")}
        state |= {k: v + 0.3 * torch.randn(v.shape, generator=gen) for k, v in state.items()
                  if k.startswith("titans.") and ".weights." in k}
        handle.load_memory_state_dict(state)
        return save_memory(handle)


def deploy(root: Path, base, memories: dict[str, bytes]) -> dict[str, str]:
    """A SQLite + file-store deployment where org ``k-<kind>`` serves its memory; env for the CLI."""
    from orgmem.checkpoints import MEMORY, CheckpointDraft, commit_checkpoint
    from orgmem.config import Settings, get_settings
    from orgmem.db.migrate import upgrade
    from orgmem.db.session import session_scope
    from orgmem.lineage import create_org
    from orgmem.store import open_store

    settings = Settings(home=root, database_url=f"sqlite:///{root / 'orgmem.db'}",
                        store_url=f"file://{root / 'store'}", base_model=base.name)
    upgrade(settings.database_url)
    store = open_store(settings=settings)
    orgs = {spec: "k-" + spec.replace("+", "-") for spec in memories}
    with session_scope(settings.database_url, write=True) as s:
        for org in orgs.values():
            create_org(s, org, org, actor="bench")
    with session_scope(settings.database_url) as s:
        for spec, data in memories.items():
            commit_checkpoint(s, store, CheckpointDraft(
                org=orgs[spec], parent_id=None, objects={MEMORY: data}, manifest={}, inputs=[], metrics={},
                status="promoted", created_by="bench", base_model=base.name,
                base_fingerprint=base.fingerprint, memory_kind=spec))
    os.environ.update(ORGMEM_DATABASE_URL=settings.database_url, ORGMEM_STORE_URL=settings.store_url,
                      ORGMEM_BASE_MODEL=base.name)
    get_settings.cache_clear()
    return orgs


def cli_export(*args: str) -> tuple[dict, float]:
    from typer.testing import CliRunner

    from orgmem.cli.main import app

    t0 = time.perf_counter()
    result = CliRunner().invoke(app, ["export", *args, "--json"])
    if result.exit_code != 0:
        raise SystemExit(f"orgmem export {args} failed: {result.stderr}")
    return json.loads(result.stdout), time.perf_counter() - t0


def served_logits(base, memory, ids: torch.Tensor) -> torch.Tensor:
    from orgmem.serving.routing import MemoryRouter

    router = MemoryRouter(base.model)
    router.ensure_hooks(memory.paths)
    try:
        with torch.inference_mode(), router.route([memory]):
            return base.model(input_ids=ids).logits.float()
    finally:
        router.remove_hooks()


class _Recorder:
    """Records the tokens the engine takes (a ``TokenConstraint`` that allows all)."""

    def __init__(self) -> None:
        self.tokens: list[int] = []

    def allowed(self, vocab_size: int) -> None:
        return None

    def advance(self, token: int) -> None:
        self.tokens.append(token)

    finished = False


def engine_tokens(engine, prompt: list[int], memory, max_tokens: int) -> list[int]:
    from orgmem.serving.engine import Finished, GenerationRequest
    from orgmem.serving.sampling import SamplingParams

    done, rec = threading.Event(), _Recorder()
    engine.submit(GenerationRequest(prompt_ids=prompt, memory=memory, constraint=rec,
                                    on_event=lambda e: done.set() if isinstance(e, Finished) else None,
                                    params=SamplingParams(max_tokens=max_tokens, temperature=0)))
    if not done.wait(600):
        raise SystemExit("engine did not finish")
    return rec.tokens


def generate_tokens(model, prompt: list[int], max_tokens: int) -> list[int]:
    with torch.inference_mode():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=max_tokens, do_sample=False)
    stops = model.generation_config.eos_token_id
    stops = {stops} if isinstance(stops, int) else set(stops)
    new = out[0, len(prompt):].tolist()
    cut = next((i + 1 for i, t in enumerate(new) if t in stops), len(new))
    return new[:cut]


def compare(model, base, memory, prompts: list[list[int]]) -> tuple[float, float]:
    """(max |exported - served|, max |served - bare|) over the prompts."""
    delta = effect = 0.0
    for prompt in prompts:
        ids = torch.tensor([prompt])
        with torch.inference_mode():
            got = model(input_ids=ids).logits.float()
            bare = base.model(input_ids=ids).logits.float()
        want = served_logits(base, memory, ids)
        delta = max(delta, float((got - want).abs().max()))
        effect = max(effect, float((want - bare).abs().max()))
    return delta, effect


def run_kind(spec: str, org: str, data: bytes, bases: dict, prompts, args, root: Path) -> dict:  # noqa: PLR0913
    from transformers import AutoModelForCausalLM

    from orgmem.memory import build_row_memory
    from orgmem.serving.engine import GenerationEngine
    from orgmem.store.base import sha256_hex

    out = root / f"export-{org}"
    info, seconds = cli_export(org, str(out))
    row = {"kind": spec, "export_s": round(seconds, 2), "files": len(info["files"]),
           "folder_mb": round(sum(p.stat().st_size for p in out.iterdir()) / 2**20, 1),
           "tokenizer_equal": tokenizer_equal(out, bases["float32"])}
    for label, base in bases.items():
        memory = build_row_memory(base, data, sha256=sha256_hex(data), source=spec)
        model = AutoModelForCausalLM.from_pretrained(str(out), trust_remote_code=True, dtype=base.dtype)
        model.eval()
        delta, effect = compare(model, base, memory, prompts)
        engine = GenerationEngine(base).start()
        try:
            served = [engine_tokens(engine, p, memory, args.tokens) for p in prompts[: len(QUESTIONS)]]
        finally:
            engine.stop()
        same = [s == generate_tokens(model, p, args.tokens) for s, p in zip(served, prompts, strict=False)]
        rope = rope_same = None
        if base.dtype != torch.float32:  # orgmem's loader casts the rotary inv_freq buffer too (to(dtype))
            del model
            model = AutoModelForCausalLM.from_pretrained(str(out), trust_remote_code=True, dtype=base.dtype,
                                                         orgmem_rope_in_model_dtype=True).eval()
            rope = compare(model, base, memory, prompts)[0]
            rope_same = [s == generate_tokens(model, p, args.tokens)
                         for s, p in zip(served, prompts, strict=False)]
        row[label] = {"max_abs_delta_logit": delta, "memory_effect": effect,
                      "greedy_equal": f"{sum(same)}/{len(same)}"}
        if rope is not None and rope_same is not None:
            row[label]["max_abs_delta_logit_rope_as_orgmem"] = rope
            row[label]["greedy_equal_rope_as_orgmem"] = f"{sum(rope_same)}/{len(rope_same)}"
        del model
    if spec == "lora" and bases["float32"].path is not None:  # peft loads the base from its folder
        row["peft"] = peft_delta(org, bases["float32"], data, prompts, root)
    shutil.rmtree(out)
    print(json.dumps(row), flush=True)
    return row


def tokenizer_equal(out: Path, base) -> bool:
    """The folder's tokenizer encodes the chat prompts (template included) and plain text as orgmem's."""
    from transformers import AutoTokenizer

    from orgmem.models.tokens import encode_chat

    tok = AutoTokenizer.from_pretrained(str(out), trust_remote_code=True)
    text = "Héllo, wörld! 1234 <|im_end|>"
    return (tok.chat_template == base.tokenizer.chat_template
            and all(encode_chat(tok, q) == encode_chat(base.tokenizer, q) for q in QUESTIONS)
            and tok(text)["input_ids"] == base.tokenizer(text)["input_ids"])


def peft_delta(org: str, base, data: bytes, prompts, root: Path) -> dict:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from orgmem.memory import build_row_memory
    from orgmem.store.base import sha256_hex

    out = root / "peft"
    cli_export(org, str(out), "--format", "peft")
    plain = AutoModelForCausalLM.from_pretrained(str(base.path), dtype=torch.float32)
    model = PeftModel.from_pretrained(plain, str(out)).eval()
    delta, effect = compare(model, base, build_row_memory(base, data, sha256=sha256_hex(data), source="lora"),
                            prompts)
    shutil.rmtree(out)
    return {"max_abs_delta_logit": delta, "memory_effect": effect}


def base_only(bases: dict, prompts, args) -> dict:
    """The bare base (no memory): orgmem's loaded base against plain transformers on its folder, per
    dtype, so a difference that is the base's own is not read as the export's."""
    from transformers import AutoModelForCausalLM

    from orgmem.serving.engine import GenerationEngine

    out = {}
    for label, base in bases.items():
        plain = AutoModelForCausalLM.from_pretrained(str(base.path), dtype=base.dtype).eval()
        delta = 0.0
        for prompt in prompts:
            ids = torch.tensor([prompt])
            with torch.inference_mode():
                diff = plain(input_ids=ids).logits.float() - base.model(input_ids=ids).logits.float()
            delta = max(delta, float(diff.abs().max()))
        engine = GenerationEngine(base).start()
        try:
            same = [engine_tokens(engine, p, None, args.tokens) == generate_tokens(plain, p, args.tokens)
                    for p in prompts[: len(QUESTIONS)]]
        finally:
            engine.stop()
        out[label] = {"max_abs_delta_logit": delta, "greedy_equal": f"{sum(same)}/{len(same)}"}
        if base.dtype != torch.float32:  # the same base with the RoPE buffer cast as orgmem's loader does
            plain.model.rotary_emb.inv_freq = plain.model.rotary_emb.inv_freq.to(base.dtype)
            with torch.inference_mode():
                diff = max(float((plain(input_ids=torch.tensor([p])).logits.float()
                                  - base.model(input_ids=torch.tensor([p])).logits.float()).abs().max())
                           for p in prompts)
            out[label]["max_abs_delta_logit_rope_as_orgmem"] = diff
        print(json.dumps({"base_only": label, **out[label]}), flush=True)
    return out


def write_markdown(result: dict) -> None:
    lines = [f"Export round trip on `{result['base']}` ({result['when']}, {result['machine']}, torch "
             f"{result['torch']}, transformers {result['transformers']}); noise scale {result['scale']}, "
             f"{result['tokens']} greedy tokens per question.", "",
             "| kind | fp32 max abs dlogit | fp32 greedy equal | bf16 max abs dlogit | bf16 greedy equal | "
             "bf16, orgmem_rope_in_model_dtype: max abs dlogit | greedy equal | memory effect (fp32) | "
             "export s | folder MB | tokenizer equal |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        f, b = r["float32"], r.get("bfloat16", {})
        lines.append(f"| {r['kind']} | {f['max_abs_delta_logit']:.2e} | {f['greedy_equal']} | "
                     f"{b.get('max_abs_delta_logit', float('nan')):.2e} | {b.get('greedy_equal', '-')} | "
                     f"{b.get('max_abs_delta_logit_rope_as_orgmem', float('nan')):.2e} | "
                     f"{b.get('greedy_equal_rope_as_orgmem', '-')} | "
                     f"{f['memory_effect']:.3g} | {r['export_s']} | {r['folder_mb']} | "
                     f"{r.get('tokenizer_equal', '-')} |")
        if "peft" in r:
            lines.append(f"| lora via peft (fp32) | {r['peft']['max_abs_delta_logit']:.2e} | | | | | | "
                         f"{r['peft']['memory_effect']:.3g} | | | |")
    bare = result.get("base_only", {})
    if bare:
        f, b = bare.get("float32", {}), bare.get("bfloat16", {})
        lines.append(f"| bare base (no memory): plain transformers vs orgmem's loaded base | "
                     f"{f.get('max_abs_delta_logit', float('nan')):.2e} | {f.get('greedy_equal', '-')} | "
                     f"{b.get('max_abs_delta_logit', float('nan')):.2e} | {b.get('greedy_equal', '-')} | "
                     f"{b.get('max_abs_delta_logit_rope_as_orgmem', float('nan')):.2e} | - | | | | |")
    RESULTS.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="smollm2-135m-instruct")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--scale", type=float, default=0.01, help="std of the noise on each memory weight")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-bf16", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import transformers

    from orgmem.models import load_base
    from orgmem.models.tokens import encode_chat

    bases = {"float32": load_base(args.base, device="cpu", dtype=torch.float32)}
    if not args.no_bf16:
        bases["bfloat16"] = load_base(args.base, device="cpu", dtype=torch.bfloat16)
    base = bases["float32"]
    gen = torch.Generator().manual_seed(0)
    prompts = [encode_chat(base.tokenizer, q) for q in QUESTIONS]
    prompts.append(torch.randint(100, base.model.config.vocab_size, (128,), generator=gen).tolist())
    kinds = args.kinds.split(",")
    memories = {spec: perturbed(base, spec, seed, args.scale) for seed, spec in enumerate(kinds)}
    with tempfile.TemporaryDirectory(prefix="orgmem-export-bench-") as tmp:
        root = Path(tmp)
        orgs = deploy(root, base, memories)
        rows = [run_kind(spec, orgs[spec], memories[spec], bases, prompts, args, root) for spec in kinds]
    bare = base_only(bases, prompts, args) if base.path is not None else {}
    result = {"base": args.base, "fingerprint": base.fingerprint, "when": time.strftime("%Y-%m-%d %H:%M UTC",
              time.gmtime()), "machine": f"{platform.machine()} cpu, {args.threads} torch thread(s)",
              "torch": torch.__version__, "transformers": transformers.__version__, "scale": args.scale,
              "tokens": args.tokens, "rows": rows, "base_only": bare}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    write_markdown(result)
    print(RESULTS.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
