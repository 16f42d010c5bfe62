"""Meta-training of a base's Titans memory: learn projections, rates and gates so that test-time
writes store something a later, separate context can retrieve.

Outer step on a batch of episodes, lower layers cached (``bank.py``). The episodes follow a
curriculum (``curriculum_tokens``): night-shaped episodes (``night_episodes.py``: code, docs, chat
and news, facts spread through them, some changed later) from short to night-sized, each written
in windows of ``window_tokens`` as a night's chunks are; with no curriculum, the short template
episodes of ``episodes.py``.

1. write: each episode's documents go through the memory layer(s), one memory per episode;
2. written read: the episode's queries in a fresh context, reading its own memory -> NLL on answers;
3. shuffled read: the same queries reading ANOTHER episode's memory (same formats, other facts);
4. base: the queries without memory (no gradient);
5. generic: the base's own generic chat and plain text (``generic.py``) read with the episode's
   written memory attached, against the base on the same text.

loss = answer_weight * NLL(written) + control_weight * KL(base || shuffled) on the answer tokens
     + generic_weight * KL(base || written) on every generic token (the gate must stay shut
       off-topic: without this term it learned to open whenever memory is read, docs/gpu_session.md).

Why not simply NLL(written): a memory can lower it by teaching the answer *format* (the CPU run
mostly learned that: ``docs/knowledge_tuning.md``); with the shuffled control such help must also
leave the unrelated-memory model at the base distribution, so only fact-specific retrieval pays. (Training on
NLL(written) - NLL(shuffled) directly would reward making wrong memories hurt.) The reported gap is
NLL(shuffled) - NLL(written).

Resumable: a checkpoint every ``checkpoint_every`` steps under ``<models_dir>/<base>/titans_meta/``;
the episode stream is a pure function of (seed, step), so resuming equals running straight through.
The result is stored as the base's initialisation (``init_store.py``), which the kind loads at attach.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import Tensor
from tqdm.auto import tqdm

from orgmem.errors import ConflictError, IncompatibleBaseError
from orgmem.memory.handle import attached_handle
from orgmem.memory.titans.bank import EpisodeBank, build_bank, build_night_bank
from orgmem.memory.titans.config import TitansConfig
from orgmem.memory.titans.generic import GenericBank, build_generic
from orgmem.memory.titans.init_store import INIT_FILE, meta_dir, save_meta_init
from orgmem.memory.titans.model import TitansMemory
from orgmem.memory.titans.neural_memory import MemoryState, NeuralMemory
from orgmem.memory.titans.night_episodes import NightShape
from orgmem.models.layers import decoder_layers, final_hidden, lm_logits, run_layers

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"


@dataclass
class MetaTrainConfig:
    """Outer-loop settings (the memory's own shape is a ``TitansConfig``)."""

    steps: int = field(default=2000, metadata={"help": "Outer steps in total (a resume continues to it)."})
    batch_size: int = field(default=16, metadata={"help": "Episodes per outer step."})
    lr: float = field(default=1e-3, metadata={"help": "AdamW learning rate of the meta-parameters."})
    control_weight: float = field(default=1.0, metadata={"help": "Weight of KL(base || shuffled memory)."})
    bank_size: int = field(default=256, metadata={"help": "Episodes per cached bank."})
    bank_refresh: int = field(default=100, metadata={"help": "Steps before a new bank of episodes."})
    eval_episodes: int = field(default=64, metadata={"help": "Held-out episodes for the reported gap."})
    eval_every: int = field(default=0, metadata={"help": "Evaluate every N steps (0: start and end)."})
    checkpoint_every: int = field(default=50, metadata={"help": "Checkpoint every N steps."})
    facts: tuple[int, int] = field(default=(4, 10), metadata={"help": "Facts per episode (min, max)."})
    queries: int = field(default=4, metadata={"help": "Facts asked per episode."})
    chat_prob: float = field(default=0.5, metadata={"help": "Share of episodes queried in chat form."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Clip of the outer gradient."})
    gate_init: float = field(default=1.0, metadata={
        "help": "Gate scale at the start (closed = 0 would leave only the scale itself a gradient)."})
    seed: int = field(default=0, metadata={"help": "Seed of the episode stream."})
    answer_weight: float = field(default=1.0, metadata={"help": "Weight of the answer NLL (written memory)."})
    generic_weight: float = field(default=1.0, metadata={
        "help": "Weight of KL(base || written memory) on generic chat and plain text (gate shut off-topic)."})
    generic_items: int = field(default=32, metadata={"help": "Generic texts (0: no generic term)."})
    curriculum_tokens: tuple[int, ...] = field(default=(512, 2048, 8192), metadata={
        "help": "Write tokens of the night-shaped episodes per stage, short to night-sized "
                "(empty: the short template episodes)."})
    curriculum_steps: tuple[int, ...] = field(default=(500, 1000), metadata={
        "help": "Outer steps of each stage but the last (the last runs to the end)."})
    curriculum_batch: tuple[int, ...] = field(default=(16, 8, 4), metadata={
        "help": "Episodes per outer step in each stage (empty: batch_size); long episodes cost memory."})
    window_tokens: int = field(default=512, metadata={
        "help": "Tokens per write window: a night's chunk, encoded in its own context."})
    facts_per_k: float = field(default=3.0, metadata={"help": "Facts per 1000 write tokens."})
    update_share: float = field(default=0.3, metadata={"help": "Share of facts changed later in the night."})
    checkpoint_writes: bool = field(default=True, metadata={
        "help": "Recompute each window's writes in the backward pass (night-sized episodes fit in memory)."})

    def __post_init__(self) -> None:
        n = len(self.curriculum_tokens)
        if n and len(self.curriculum_steps) != n - 1:
            raise ValueError(f"meta-training config: {n} curriculum stages need {n - 1} curriculum_steps "
                             f"(the last stage runs to the end), got {len(self.curriculum_steps)}")
        if self.curriculum_batch and len(self.curriculum_batch) != n:
            raise ValueError(f"meta-training config: curriculum_batch has {len(self.curriculum_batch)} "
                             f"entries for {n} stages")

    def stream_fields(self) -> dict[str, Any]:
        """What a resume must keep equal (all but the step target)."""
        data = dataclasses.asdict(self)
        data.pop("steps")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    def stage(self, step: int) -> int:
        """Curriculum stage of an outer step (0 without a curriculum)."""
        stage, end = 0, 0
        for steps in self.curriculum_steps:
            end += steps
            if step < end:
                return stage
            stage += 1
        return stage

    def stage_start(self, stage: int) -> int:
        return sum(self.curriculum_steps[:stage])

    def batch_for(self, stage: int) -> int:
        return self.curriculum_batch[stage] if self.curriculum_batch else self.batch_size

    def weights(self) -> LossWeights:
        return LossWeights(self.answer_weight, self.control_weight, self.generic_weight)


@dataclass(frozen=True)
class LossWeights:
    """Weights of the outer loss's terms (see the module docstring)."""

    answer: float = 1.0
    control: float = 1.0
    generic: float = 1.0


@dataclass
class MetaTrainResult:
    steps: int
    complete: bool
    init_path: Path
    checkpoint_path: Path
    before: dict[str, float]
    after: dict[str, float]
    seconds: float
    history: list[dict[str, float]]


# ---- one episode batch -------------------------------------------------------------------------
def _answer_logprobs(model, batch: EpisodeBank, pred: Tensor) -> Tensor:
    """Log-probabilities (m, vocab) at the positions predicting answers, reading the current memory."""
    hidden = run_layers(model, batch.query_hidden, batch.layer, len(decoder_layers(model)))
    return F.log_softmax(lm_logits(model, final_hidden(model, hidden[pred])).float(), dim=-1)


def _write(kind: TitansMemory, model, batch: EpisodeBank, checkpoint_writes: bool = False) -> None:
    """One fresh memory per episode, written with the episode's documents window by window (then
    flushed). The last memory layer's own attention/MLP output is not needed: only its memory runs."""
    kind.reset_memory(len(batch))
    kind.train()
    single = kind.layers[0] == kind.layers[-1] == batch.layer
    try:
        for sl in batch.windows():
            mask = batch.write_mask[:, sl]
            if not mask.any():
                continue
            if single and checkpoint_writes and kind.keep_graph:
                key = str(batch.layer)
                kind.states[key] = _checkpointed_write(kind.layer_memories[key], kind.states[key],
                                                       batch.write_hidden[:, sl], mask)
                continue
            kind.set_token_mask(mask)
            hidden = run_layers(model, batch.write_hidden[:, sl], batch.layer, kind.layers[-1])
            kind.apply_memory(str(kind.layers[-1]), hidden)
    finally:
        kind.set_token_mask(None)
        kind.eval()
    kind.flush()


def _checkpointed_write(memory: NeuralMemory, state: MemoryState, x: Tensor, mask: Tensor) -> MemoryState:
    """A window's writes whose intermediate tensors are recomputed in the backward pass: an outer
    step through a night-sized write then keeps one state per window, not one per chunk."""
    current = state.tensors()
    names = list(current)

    def run(*flat: Tensor) -> tuple[Tensor, ...]:
        tensors = dict(zip(names, flat[:-2], strict=True))
        _, new = memory(flat[-2], MemoryState.from_tensors(tensors), mask=flat[-1])
        out = new.tensors()
        return tuple(out[n] for n in names)

    new = torch.utils.checkpoint.checkpoint(run, *current.values(), x, mask, use_reentrant=False)
    return MemoryState.from_tensors(dict(zip(names, new, strict=True)))


def _generic_kl(kind: TitansMemory, model, generic: GenericBank, gidx: Tensor) -> tuple[Tensor, float]:
    """KL(base || model reading the written memories) on generic text, and the mean read gate there."""
    hidden, mask = generic.rows(gidx)
    end = len(decoder_layers(model))

    def logprobs() -> Tensor:
        h = run_layers(model, hidden, generic.layer, end)
        return F.log_softmax(lm_logits(model, final_hidden(model, h[mask])).float(), dim=-1)

    lp_m = logprobs()
    with torch.no_grad():
        kind.set_enabled(False)
        try:
            lp_b = logprobs()
        finally:
            kind.set_enabled(True)
    kl = (lp_b.exp() * (lp_b - lp_m)).sum(-1).mean()
    return kl, _mean_gate(kind, hidden, mask, generic.layer)


@torch.no_grad()
def _mean_gate(kind: TitansMemory, hidden: Tensor, mask: Tensor, layer: int) -> float:
    """Mean read gate of the first memory layer over masked tokens (hidden states entering it)."""
    memory = kind.layer_memories.get(str(layer))
    if memory is None:
        return float("nan")
    gate = torch.sigmoid(memory.to_gate(memory.normalise(hidden))) * memory.gate_scale
    return gate.mean(-1)[mask].mean().item()


def episode_losses(kind: TitansMemory, model, bank: EpisodeBank, idx: Tensor,  # noqa: PLR0913  # one batch and its loss terms
                   weights: LossWeights | float, generic: GenericBank | None = None,
                   gidx: Tensor | None = None, checkpoint_writes: bool = False
                   ) -> tuple[Tensor, dict[str, float]]:
    """The outer loss of a batch and its metrics (answer NLL/accuracy written, shuffled, base; KL on
    generic text with the written memories attached)."""
    w = weights if isinstance(weights, LossWeights) else LossWeights(control=weights, generic=0.0)
    batch = bank.batch(idx)
    pred, target = batch.predictors()
    _write(kind, model, batch, checkpoint_writes)
    written = kind.states
    lp_w = _answer_logprobs(model, batch, pred)
    metrics: dict[str, float] = {}
    generic_kl = lp_w.new_zeros(())
    if generic is not None and gidx is not None:
        generic_kl, metrics["gate_generic"] = _generic_kl(kind, model, generic, gidx)
        metrics["kl_generic"] = generic_kl.item()
    metrics["gate_query"] = _mean_gate(kind, batch.query_hidden, pred, batch.layer)
    kind.states = {k: s.map(lambda t: t.roll(1, 0)) for k, s in written.items()}
    lp_s = _answer_logprobs(model, batch, pred)
    with torch.no_grad():
        kind.set_enabled(False)
        try:
            lp_b = _answer_logprobs(model, batch, pred)
        finally:
            kind.set_enabled(True)
    nll = {name: -lp.gather(1, target[:, None]).squeeze(1) for name, lp in
           (("written", lp_w), ("shuffled", lp_s), ("base", lp_b))}
    kl = (lp_b.exp() * (lp_b - lp_s)).sum(-1).mean()
    loss = w.answer * nll["written"].mean() + w.control * kl + w.generic * generic_kl
    metrics |= {f"nll_{k}": v.mean().item() for k, v in nll.items()}
    metrics |= {f"acc_{k}": (lp.argmax(-1) == target).float().mean().item()
                for k, lp in (("written", lp_w), ("shuffled", lp_s), ("base", lp_b))}
    metrics |= {"kl_shuffled": kl.item(), "gap": metrics["nll_shuffled"] - metrics["nll_written"],
                "loss": loss.item()}
    return loss, metrics


@torch.no_grad()
def evaluate(kind: TitansMemory, model, bank: EpisodeBank, batch_size: int,
             weights: LossWeights | float = 1.0, generic: GenericBank | None = None) -> dict[str, float]:
    """Mean metrics over a bank (each batch's shuffled memories come from its other episodes; the
    generic texts are taken in order)."""
    keep, kind.keep_graph = kind.keep_graph, False
    totals: dict[str, float] = {}
    batches = 0
    try:
        for s in range(0, len(bank) - 1, batch_size):
            idx = torch.arange(s, min(s + batch_size, len(bank)), device=bank.write_ids.device)
            if len(idx) < 2:
                break
            gidx = None if generic is None else idx % len(generic)
            _, m = episode_losses(kind, model, bank, idx, weights, generic, gidx)
            totals = {k: totals.get(k, 0.0) + v for k, v in m.items()}
            batches += 1
    finally:
        kind.keep_graph = keep
        kind.reset_memory(1)
    return {k: round(v / max(batches, 1), 4) for k, v in totals.items()}


@torch.no_grad()
def set_centers(kind: TitansMemory, model, bank: EpisodeBank) -> None:
    """Calibrate each memory on the states entering its layer: centre the correlated states
    (``docs/knowledge_tuning.md``)."""
    kind.set_enabled(False)
    try:
        for key, memory in kind.layer_memories.items():
            hidden = run_layers(model, bank.write_hidden, bank.layer, int(key))
            memory.calibrate(hidden[bank.write_mask])
    finally:
        kind.set_enabled(True)


# ---- checkpoints -------------------------------------------------------------------------------
def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _load_checkpoint(path: Path, base, titans: TitansConfig, cfg: MetaTrainConfig) -> dict[str, Any]:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain data only
    if ckpt["base_fingerprint"] != base.fingerprint:
        raise IncompatibleBaseError(
            f"meta-training checkpoint {path} belongs to base fingerprint {ckpt['base_fingerprint'][:16]}…, "
            f"not {base.name!r} ({base.fingerprint[:16]}…)")
    for what, saved, now in (("memory config", ckpt["titans"], titans.architecture()),
                             ("meta-training settings", ckpt["settings"], cfg.stream_fields())):
        if saved != now:
            diff = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
            was, now_ = {k: saved.get(k) for k in diff}, {k: now.get(k) for k in diff}
            raise ConflictError(f"cannot resume {path}: its {what} differ in {diff} "
                                f"(saved {was}, now {now_})")
    return ckpt


# ---- the loop ----------------------------------------------------------------------------------
class _Banks:
    """The bank for a step: bank ``(stage, local step // bank_refresh)`` built from its own seed
    (resume-exact), plus the generic texts (built once, from the base itself)."""

    def __init__(self, kind: TitansMemory, base, cfg: MetaTrainConfig, progress: bool) -> None:
        self.base, self.layer, self.cfg, self.progress = base, kind.layers[0], cfg, progress
        self.key, self.bank = (-1, -1), cast(EpisodeBank, None)  # built by the first ``for_step``
        self.generic: GenericBank | None = None
        if cfg.generic_items > 0:  # measured even at weight 0: the drift it reports matters
            kind.set_enabled(False)  # the base's own replies
            try:
                self.generic = build_generic(base, self.layer, cfg.generic_items)
            finally:
                kind.set_enabled(True)

    def seed(self, stage: int, index: int) -> int:
        return self.cfg.seed * 1_000_003 + stage * 100_003 + index

    def build(self, seed: int, size: int, stage: int) -> EpisodeBank:
        c = self.cfg
        if not c.curriculum_tokens:
            return build_bank(self.base, self.layer, seed, size, facts=(c.facts[0], c.facts[1]),
                              queries=c.queries, chat_prob=c.chat_prob, progress=self.progress)
        shape = NightShape(tokens=c.curriculum_tokens[stage], facts_per_k=c.facts_per_k,
                           update_share=c.update_share, queries=c.queries, chat_prob=c.chat_prob)
        return build_night_bank(self.base, self.layer, seed, size, shape, window=c.window_tokens,
                                progress=self.progress)

    def eval_bank(self) -> EpisodeBank:
        """Held-out episodes of the last (night-sized) stage."""
        last = max(len(self.cfg.curriculum_tokens) - 1, 0)
        return self.build(self.cfg.seed * 1_000_003 - 1, self.cfg.eval_episodes, last)

    def for_step(self, step: int) -> EpisodeBank:
        stage = self.cfg.stage(step)
        key = (stage, (step - self.cfg.stage_start(stage)) // max(self.cfg.bank_refresh, 1))
        if key != self.key:
            self.bank, self.key = self.build(self.seed(*key), self.cfg.bank_size, stage), key
        return self.bank


def _prepare(base, titans: TitansConfig) -> TitansMemory:
    if attached_handle(base) is not None:
        raise ConflictError(f"base {base.name!r} has memory attached: detach it before meta-training")
    titans = dataclasses.replace(titans, meta_init="none")
    kind = TitansMemory(base, titans, titans.resolve_layers(base.num_layers))
    kind.keep_graph = True
    for p in kind.meta_parameters():
        p.requires_grad_(True)
    kind.attach()  # hooks only: the write/read passes below call the decoder layers directly
    return kind


def meta_train(base, steps: int | None = None, *, titans: TitansConfig | None = None,
               config: MetaTrainConfig | None = None, resume: bool = False, out_dir: Path | None = None,
               max_seconds: float | None = None, progress: bool = True) -> MetaTrainResult:
    """Meta-train the Titans memory of ``base`` up to ``steps`` outer steps and store the result as
    the base's initialisation; ``resume`` continues from the last checkpoint in ``out_dir``."""
    cfg = config or MetaTrainConfig()
    if steps is not None:
        cfg = dataclasses.replace(cfg, steps=steps)
    titans = titans or TitansConfig()
    out_dir = Path(out_dir) if out_dir is not None else meta_dir(base)
    ckpt_path = out_dir / CHECKPOINT_FILE
    if ckpt_path.exists() and not resume:
        raise ConflictError(f"a meta-training checkpoint exists at {ckpt_path}: pass --resume to continue it "
                            "or delete it to start over")
    kind = _prepare(base, titans)
    try:
        titans = kind.config
        opt = torch.optim.AdamW(kind.meta_parameters(), lr=cfg.lr, weight_decay=0.0)
        banks = _Banks(kind, base, cfg, progress)
        eval_bank = banks.eval_bank()
        start, history, before = _start(kind, base, opt, banks, eval_bank, cfg, ckpt_path, resume)
        done, elapsed = _loop(kind, base, opt, banks, eval_bank, cfg, start, history, before, ckpt_path,
                              max_seconds, progress)
        after = evaluate(kind, base.model, eval_bank, cfg.batch_size, cfg.weights(), banks.generic)
        info = {"steps": done, "target_steps": cfg.steps, "before": before, "after": after,
                "settings": cfg.stream_fields()}
        init_path = save_meta_init(out_dir / INIT_FILE, kind.meta_tensors(), base=base, config=titans,
                                   info=info)
    finally:
        kind.detach()
    logger.info("titans meta-training stored", extra={"base": base.name, "path": str(init_path), **after})
    return MetaTrainResult(done, done >= cfg.steps, init_path, ckpt_path, before, after, elapsed, history)


def _start(kind: TitansMemory, base, opt, banks: _Banks, eval_bank: EpisodeBank, cfg: MetaTrainConfig,
           ckpt_path: Path, resume: bool) -> tuple[int, list, dict]:
    """(first step, history, metrics before training): from the checkpoint, or a fresh start."""
    if resume and ckpt_path.exists():
        ckpt = _load_checkpoint(ckpt_path, base, kind.config, cfg)
        kind.load_meta(ckpt["meta"], source=str(ckpt_path))
        opt.load_state_dict(ckpt["optimizer"])
        logger.info("resuming titans meta-training", extra={"base": base.name, "step": ckpt["step"]})
        return ckpt["step"], ckpt["history"], ckpt["before"]
    if resume:
        logger.warning("no meta-training checkpoint to resume: starting at step 0",
                       extra={"base": base.name, "path": str(ckpt_path)})
    set_centers(kind, base.model, banks.for_step(0))
    with torch.no_grad():  # open the gate: an empty memory still reads zero, so attach stays exact
        for memory in kind.layer_memories.values():
            memory.gate_scale.fill_(cfg.gate_init)
    before = evaluate(kind, base.model, eval_bank, cfg.batch_size, cfg.weights(), banks.generic)
    logger.info("titans meta-training starts", extra={"base": base.name, **before})
    return 0, [], before


def _loop(kind: TitansMemory, base, opt, banks: _Banks, eval_bank: EpisodeBank, cfg: MetaTrainConfig,  # noqa: PLR0913  # the loop's state, resumed from a checkpoint
          start: int, history: list, before: dict, ckpt_path: Path, max_seconds: float | None, progress: bool
          ) -> tuple[int, float]:
    """Outer steps ``start..cfg.steps`` (or until ``max_seconds``); returns (steps done, seconds)."""
    t0, done = time.time(), start
    bar = tqdm(range(start, cfg.steps), desc="titans meta-train", disable=not progress, initial=start,
               total=cfg.steps)
    for step in bar:
        bank = banks.for_step(step)
        gen = torch.Generator().manual_seed(cfg.seed * 7919 + step)
        size = cfg.batch_for(cfg.stage(step))
        idx = torch.randperm(len(bank), generator=gen)[:size].to(bank.write_ids.device)
        gidx = None
        if banks.generic is not None:
            gidx = torch.randint(len(banks.generic), (len(idx),), generator=gen).to(idx.device)
        loss, metrics = episode_losses(kind, base.model, bank, idx, cfg.weights(), banks.generic, gidx,
                                       cfg.checkpoint_writes)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(kind.meta_parameters(), cfg.max_grad_norm)
        opt.step()
        kind.reset_memory(1)
        history.append({"step": step + 1, "stage": cfg.stage(step),
                        **{k: round(v, 4) for k, v in metrics.items()}})
        logger.info("titans meta-training step", extra={"base": base.name, **history[-1]})
        bar.set_postfix(gap=f"{metrics['gap']:+.3f}", nll=f"{metrics['nll_written']:.3f}",
                        kl_gen=f"{metrics.get('kl_generic', 0.0):.4f}")
        if cfg.eval_every and (step + 1) % cfg.eval_every == 0:
            history[-1]["eval"] = evaluate(kind, base.model, eval_bank, cfg.batch_size, cfg.weights(),
                                           banks.generic)
            logger.info("titans meta-training eval", extra={"step": step + 1, **history[-1]["eval"]})
        out_of_time = max_seconds is not None and time.time() - t0 >= max_seconds
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps or out_of_time:
            _atomic_save({"step": step + 1, "meta": kind.meta_tensors(), "optimizer": opt.state_dict(),
                          "history": history, "before": before, "base_fingerprint": base.fingerprint,
                          "titans": kind.config.architecture(), "settings": cfg.stream_fields()}, ckpt_path)
        done = step + 1
        if out_of_time:
            break
    bar.close()
    return done, time.time() - t0
