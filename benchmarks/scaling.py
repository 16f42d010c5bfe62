"""Sizing on paper: what one GPU consolidates per night, and how many GPUs a fleet needs.

Why this exists: the measured runs are tiny (one 8 KB night on a 135M base), while deployment
questions are about 10-1,000 MB nights on 1.7B-8B bases. Every constant below is either measured
in this repository (``benchmarks/results/knowledge.json``, ``benchmarks/results/device/``) or a
stated assumption, so ``docs/scaling.md`` can be regenerated and re-checked when a measurement
changes: ``python benchmarks/scaling.py``. Pure Python, no imports beyond the standard library.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# -- measured here (knowledge benchmark, SmolLM2-135M-Instruct, default recipe) ----------------------
NIGHT1_TRAIN_TOKENS = 52_091  # cms night 1, knowledge.json (tokens incl. rehearsal)
NIGHT1_STEPS = 73
NIGHT1_NEW_TOKENS = 2_171  # night-1 documents (7,918 bytes), SmolLM2 tokenizer
NIGHT2_TRAIN_TOKENS = 54_002  # night 2: 1,810 new tokens + 7 replay chunks
NIGHT2_NEW_TOKENS = 1_810
REAL_TRAIN_TOKENS = 172_000  # pybreaker 1.4.1, defaults (docs/knowledge_tuning.md, row K)
REAL_NEW_TOKENS = 10_590  # pybreaker sources + README (43,586 bytes)
CPU_TOKENS_PER_S = 526.3  # cms, 2 cores, fp32 (mean of the two nights)
H200_TOKENS_PER_S = 12_496.0  # cms default recipe, night 1, fp32 (device/tune.jsonl)
H200_MS_PER_STEP = {8: 50.0, 18: 71.0, 24: 99.0}  # memory-carrying layers run per step -> ms (tune.jsonl)
CPU_EVAL_S_PER_NIGHT = 40.0  # knowledge.json eval_seconds ~81 s for two nights
H200_EVAL_S_PER_NIGHT = 7.0  # tune.jsonl eval_s 5.4-10 s

# -- assumptions (stated in docs/scaling.md) ---------------------------------------------------------
BYTES_PER_TOKEN = 4.0  # English prose and code; measured 3.6 (synthetic) and 4.1 (pybreaker)
EXPANSION = NIGHT1_TRAIN_TOKENS / NIGHT1_NEW_TOKENS  # training tokens per new-text token (24.0)
EXPANSION_LOW = REAL_TRAIN_TOKENS / REAL_NEW_TOKENS  # the same on real code (16.2)
EPOCHS = 4
REHEARSAL_SHARE = NIGHT1_STEPS * 120 / NIGHT1_TRAIN_TOKENS  # 1 rehearsal row (~120 tokens) per step
UNIQUE_SHARE = (1 - REHEARSAL_SHARE) / EPOCHS  # lower layers run once per unique item token
TARGET_SHARE = 0.6  # tokens whose logits are computed (lm-head ~1/3 of step compute at 135M)
PEAK_FLOPS = 990e12  # H200 bf16 dense
GPU_BYTES = 139 * 2**30  # usable H200 memory
RESERVED_BYTES = 6e9  # CUDA context, allocator slack
STEP_TOKENS_TODAY = NIGHT1_TRAIN_TOKENS / NIGHT1_STEPS  # 512 material tokens + overshoot + rehearsal
STEP_TOKENS_BIG = 16_384  # a recipe change (tokens_per_step), not measured for recall
WINDOW_H = 8.0
PACKING = 0.8  # share of the window a scheduler actually fills (retries, stragglers, bin-packing)
NODE_GPUS = 8  # widest data-parallel run that keeps the hidden-state cache (one NVLink node)
FLEET_MIX = {10: 70, 100: 25, 1000: 5}  # MB of new text per night -> number of orgs (of 100)
ORG_SIZES_MB = (10, 100, 1000)


@dataclass(frozen=True)
class Base:
    """A decoder-only base; the CMS memory sits on its last quarter of layers (engine default)."""

    name: str
    layers: int
    d: int
    ffn: int
    kv: int  # key/value width (GQA)
    vocab: int
    tied: bool
    mfu: float  # assumed model-FLOPs utilisation with big steps (small GEMMs reach less)
    fixed_min: float  # per org-night: eval gate, load/save memory and train state, prep
    cms_width: int = 192  # 128 + 32 + 32 neurons per wrapped layer

    @property
    def per_layer(self) -> float:
        return self.d * (2 * self.d + 2 * self.kv) + 3 * self.d * self.ffn

    @property
    def up_layers(self) -> int:
        return math.ceil(self.layers / 4)

    @property
    def n_up(self) -> float:
        return self.up_layers * self.per_layer

    @property
    def n_low(self) -> float:
        return (self.layers - self.up_layers) * self.per_layer

    @property
    def n_head(self) -> float:
        return self.vocab * self.d

    @property
    def n_total(self) -> float:
        return self.layers * self.per_layer + self.n_head * (1 if self.tied else 2)

    @property
    def n_mem(self) -> float:
        return self.up_layers * (3 * self.d * self.cms_width + self.d + 1)

    def step_flops(self) -> float:
        """Per training token: frozen upper layers fwd (2N) + activation grads (2N), no weight grads;
        the memory's own weights get weight grads too (6N); the lm-head on target tokens only."""
        return 4 * self.n_up + 6 * self.n_mem + 4 * TARGET_SHARE * self.n_head

    def prep_flops(self, recompute: bool = False) -> float:
        """Lower layers, forward only: once per unique item (engine) or every pass (recompute)."""
        share = (1 - REHEARSAL_SHARE) if recompute else UNIQUE_SHARE
        return 2 * self.n_low * share

    def flops(self, recompute: bool = False) -> float:
        return self.step_flops() + self.prep_flops(recompute)

    def floor_s(self) -> float:
        """Per-step latency floor, fitted to the H200 rows (8 -> 50 ms, 24 -> 99 ms layers run)."""
        return (25.0 + 3.1 * self.up_layers) / 1000

    def act_bytes_per_token(self) -> float:
        """Saved activations (bf16) of the upper layers + fp32 logits/grad on target tokens."""
        return self.up_layers * (6 * self.d + 2 * self.kv + 4 * self.ffn) * 2 + TARGET_SHARE * self.vocab * 10

    def fixed_bytes(self) -> float:
        return 2 * self.n_total + 20 * self.n_mem + RESERVED_BYTES  # bf16 base; fp32 param+grad+Adam


BASES = (
    Base("135M", 30, 576, 1536, 192, 49152, True, mfu=0.10, fixed_min=1.0),  # SmolLM2-135M (measured)
    Base("1.7B", 24, 2048, 8192, 2048, 49152, True, mfu=0.30, fixed_min=2.0),  # SmolLM2-1.7B shape
    Base("8B", 32, 4096, 14336, 1024, 128256, False, mfu=0.35, fixed_min=4.0),  # Llama-3.1-8B shape
)


@dataclass(frozen=True)
class Night:
    """One org-night on one base: training tokens, GPU-hours in two regimes, hidden-state cache."""

    base: Base
    mb: float
    expansion: float = EXPANSION

    @property
    def new_tokens(self) -> float:
        return self.mb * 1e6 / BYTES_PER_TOKEN

    @property
    def train_tokens(self) -> float:
        return self.new_tokens * self.expansion

    def hours_today(self, recompute: bool = False) -> float:
        """Today's step shape (~713 tokens): latency floor + compute per step, then prep and fixed."""
        b, t = self.base, self.train_tokens
        steps = t / STEP_TOKENS_TODAY
        step_s = b.floor_s() + STEP_TOKENS_TODAY * b.step_flops() / (b.mfu * PEAK_FLOPS)
        prep_s = t * b.prep_flops(recompute) / (b.mfu * PEAK_FLOPS)
        return (steps * step_s + prep_s) / 3600 + b.fixed_min / 60

    def hours_big(self, recompute: bool = False) -> float:
        """Big steps, compute-bound at the base's MFU."""
        b = self.base
        return self.train_tokens * b.flops(recompute) / (b.mfu * PEAK_FLOPS) / 3600 + b.fixed_min / 60

    def cache_bytes(self) -> float:
        """Lower-layer output of every unique item, kept on the GPU in bf16 (as the engine does)."""
        return self.train_tokens * UNIQUE_SHARE * self.base.d * 2

    def gpus_for_cache(self, step_tokens: float) -> int:
        free = GPU_BYTES - self.base.fixed_bytes() - step_tokens * self.base.act_bytes_per_token()
        return math.ceil(self.cache_bytes() / free)


def gpus(hours: float) -> int:
    return math.ceil(hours / WINDOW_H)


def mb_per_window(base: Base, hours_fn: str) -> float:
    """New MB/night at which one GPU's night reaches the window (data-parallel takes over)."""
    per_mb = (getattr(Night(base, 100.0), hours_fn)() - base.fixed_min / 60) / 100.0
    return (WINDOW_H - base.fixed_min / 60) / per_mb


def mb_per_cache(base: Base, step_tokens: float) -> float:
    """New MB/night whose hidden-state cache fills one GPU."""
    free = GPU_BYTES - base.fixed_bytes() - step_tokens * base.act_bytes_per_token()
    return free / Night(base, 1.0).cache_bytes()


def table_bases() -> list[str]:
    rows = ["| base | params | memory layers run/step | N_up | N_low | lm-head | CMS params "
            "| GFLOP/token (cache / recompute) | assumed MFU | tok/s big steps | tok/s today's steps "
            "| tok/s naive-scaled |", "|" + "---|" * 12]
    ref = BASES[0].step_flops()
    for b in BASES:
        big = b.mfu * PEAK_FLOPS / b.flops()
        today = STEP_TOKENS_TODAY / (b.floor_s() + STEP_TOKENS_TODAY * b.step_flops() / (b.mfu * PEAK_FLOPS))
        naive = H200_TOKENS_PER_S * ref / b.step_flops()
        rows.append(f"| {b.name} | {b.n_total / 1e9:.2f}B | {b.up_layers} of {b.layers} "
                    f"| {b.n_up / 1e6:,.0f}M | {b.n_low / 1e6:,.0f}M | {b.n_head / 1e6:,.0f}M "
                    f"| {b.n_mem / 1e6:.1f}M "
                    f"| {b.flops() / 1e9:.2f} / {b.flops(True) / 1e9:.2f} | {b.mfu:.0%} | {big:,.0f} "
                    f"| {today:,.0f} | {naive:,.0f} |")
    return rows


def plan(night: Night, regime: str) -> tuple[float, int, bool]:
    """GPU-hours, GPUs at once and whether lower layers are recomputed, for one org-night.

    Ideal data parallelism keeps GPU-hours and divides wall time. The engine's hidden-state cache
    is kept (sharded over the processes) while it fits on one node; past that the lower layers are
    recomputed every pass, which costs FLOPs but no memory."""
    step = STEP_TOKENS_TODAY if regime == "hours_today" else STEP_TOKENS_BIG
    hours = getattr(night, regime)()
    width = max(gpus(hours), night.gpus_for_cache(step))
    if width <= NODE_GPUS:
        return hours, width, False
    hours = getattr(night, regime)(recompute=True)
    return hours, gpus(hours), True


def table_nights() -> list[str]:
    rows = ["| base | new MB/night | new tokens | training tokens | GPU-h, today's steps | GPU-h, big steps "
            "| one GPU in 8 h? (today / big) | hidden cache GB | plan, big steps |", "|" + "---|" * 9]
    for b in BASES:
        for mb in ORG_SIZES_MB:
            n = Night(b, mb)
            today, big = n.hours_today(), n.hours_big()
            fits = " / ".join("yes" if h <= WINDOW_H else "no" for h in (today, big))
            if n.gpus_for_cache(STEP_TOKENS_BIG) > 1:
                fits += " (cache: no)"
            hours, width, rec = plan(n, "hours_big")
            how = f"{width} GPU{'s' if width > 1 else ''}"
            if rec:
                how += f", recompute lower, {hours:,.1f} GPU-h"
            rows.append(f"| {b.name} | {mb:,} | {n.new_tokens / 1e6:,.1f}M | {n.train_tokens / 1e9:,.2f}B "
                        f"| {today:,.1f} | {big:,.2f} | {fits} | {n.cache_bytes() / 1e9:,.0f} | {how} |")
    return rows


def table_fleet() -> list[str]:
    orgs = sum(FLEET_MIX.values())
    mix = ", ".join(f"{k} x {mb:,} MB" for mb, k in FLEET_MIX.items())
    rows = [f"Fleet of {orgs} orgs ({mix}), one base per fleet, window {WINDOW_H:.0f} h, "
            f"packing {PACKING:.0%}:", "",
            "| base | regime | GPU-h per night | widest org (GPUs at once) | GPUs needed |",
            "|---|---|---|---|---|"]
    for b in BASES:
        for label, fn in (("today's steps", "hours_today"), ("big steps", "hours_big")):
            plans = {mb: plan(Night(b, mb), fn) for mb in FLEET_MIX}
            total = sum(plans[mb][0] * k for mb, k in FLEET_MIX.items())
            widest = max(p[1] for p in plans.values())
            need = max(math.ceil(total / (WINDOW_H * PACKING)), widest)
            rows.append(f"| {b.name} | {label} | {total:,.0f} | {widest} | {need} |")
    return rows


def table_takeover() -> list[str]:
    rows = ["| base | MB/night filling 8 h: today's steps | big steps | big steps, recompute lower "
            "| MB/night filling GPU memory with the cache: today's steps | big steps |", "|" + "---|" * 6]
    for b in BASES:
        recompute = (WINDOW_H - b.fixed_min / 60) / (
            (Night(b, 100.0).hours_big(True) - b.fixed_min / 60) / 100.0)
        rows.append(f"| {b.name} | {mb_per_window(b, 'hours_today'):,.0f} "
                    f"| {mb_per_window(b, 'hours_big'):,.0f} | {recompute:,.0f} "
                    f"| {mb_per_cache(b, STEP_TOKENS_TODAY):,.0f} "
                    f"| {mb_per_cache(b, STEP_TOKENS_BIG):,.0f} |")
    return rows


def table_memory() -> list[str]:
    b = BASES[-1]
    n = Night(b, 10)
    rows = [f"GPU memory, {b.name} base in bf16 (GB):", "", "| item | today's steps | big steps |",
            "|---|---|---|",
            f"| base weights | {2 * b.n_total / 1e9:.1f} | {2 * b.n_total / 1e9:.1f} |",
            f"| memory params + grads + AdamW + accumulators (fp32) | {20 * b.n_mem / 1e9:.2f} "
            f"| {20 * b.n_mem / 1e9:.2f} |",
            f"| activations of one step ({b.act_bytes_per_token() / 1e6:.1f} MB/token) "
            f"| {STEP_TOKENS_TODAY * b.act_bytes_per_token() / 1e9:.1f} "
            f"| {STEP_TOKENS_BIG * b.act_bytes_per_token() / 1e9:.1f} |",
            f"| CUDA context, allocator slack | {RESERVED_BYTES / 1e9:.0f} | {RESERVED_BYTES / 1e9:.0f} |",
            f"| hidden-state cache, 10 MB night ({b.d * 2 / 1e3:.1f} KB/unique token) "
            f"| {n.cache_bytes() / 1e9:.0f} | {n.cache_bytes() / 1e9:.0f} |",
            f"| usable on one H200 | {GPU_BYTES / 1e9:.0f} | {GPU_BYTES / 1e9:.0f} |"]
    return rows


def checks() -> list[str]:
    """Cross-checks of the FLOP model against what was measured."""
    b = BASES[0]
    cpu_rate = CPU_TOKENS_PER_S * b.step_flops()
    gpu_rate = H200_TOKENS_PER_S * b.step_flops()
    return [f"- expansion: night 1 {EXPANSION:.1f}x, night 2 {NIGHT2_TRAIN_TOKENS / NIGHT2_NEW_TOKENS:.1f}x "
            f"(with replay), pybreaker {EXPANSION_LOW:.1f}x; rehearsal share {REHEARSAL_SHARE:.0%}, "
            f"unique share {UNIQUE_SHARE:.3f}",
            f"- 135M step FLOPs {b.step_flops() / 1e6:.0f} MFLOP/token: CPU {CPU_TOKENS_PER_S} tok/s = "
            f"{cpu_rate / 1e9:.0f} GFLOP/s on 2 cores; H200 {H200_TOKENS_PER_S:,.0f} tok/s = "
            f"{gpu_rate / 1e12:.1f} TFLOP/s = {gpu_rate / PEAK_FLOPS:.2%} of bf16 peak",
            f"- H200 ms/step measured {H200_MS_PER_STEP}; model floor at 8 layers "
            f"{b.floor_s() * 1000:.0f} ms; step compute at 135M "
            f"{STEP_TOKENS_TODAY * b.step_flops() / (b.mfu * PEAK_FLOPS) * 1000:.1f} ms"]


def main() -> None:
    for block in (checks(), table_bases(), table_nights(), table_fleet(), table_takeover(), table_memory()):
        print("\n".join(block), end="\n\n")


if __name__ == "__main__":
    main()
