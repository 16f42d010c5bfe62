"""Meta-training of a base's Titans memory: learn projections, rates and gates so that test-time
writes store something a later, separate context can retrieve.

Outer step on a batch of episodes (``episodes.py``), lower layers cached (``bank.py``):

1. write: each episode's documents go through the memory layer(s), one memory per episode;
2. written read: the episode's queries in a fresh context, reading its own memory -> NLL on answers;
3. shuffled read: the same queries reading ANOTHER episode's memory (same formats, other facts);
4. base: the queries without memory (no gradient).

loss = NLL(written) + control_weight * KL(base || shuffled) on the answer tokens. Why not simply
NLL(written): a memory can lower it by teaching the answer *format* (the CPU run mostly learned
that: ``docs/knowledge_tuning.md``); with the shuffled control such help must also leave the
unrelated-memory model at the base distribution, so only fact-specific retrieval pays. (Training on
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
from torch import Tensor
from tqdm.auto import tqdm

from orgmem.errors import ConflictError, IncompatibleBaseError
from orgmem.memory.handle import attached_handle
from orgmem.memory.titans.bank import EpisodeBank, build_bank
from orgmem.memory.titans.config import TitansConfig
from orgmem.memory.titans.init_store import INIT_FILE, meta_dir, save_meta_init
from orgmem.memory.titans.model import TitansMemory
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

    def stream_fields(self) -> dict[str, Any]:
        """What a resume must keep equal (all but the step target)."""
        data = dataclasses.asdict(self)
        data.pop("steps")
        data["facts"] = list(self.facts)
        return data


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


def _write(kind: TitansMemory, model, batch: EpisodeBank) -> None:
    """One fresh memory per episode, written with the episode's documents (then flushed).

    The last memory layer's own attention/MLP output is not needed for writing: only its memory runs.
    """
    kind.reset_memory(len(batch))
    kind.train()
    kind.set_token_mask(batch.write_mask)
    try:
        hidden = run_layers(model, batch.write_hidden, batch.layer, kind.layers[-1])
        kind.apply_memory(str(kind.layers[-1]), hidden)
    finally:
        kind.set_token_mask(None)
        kind.eval()
    kind.flush()


def episode_losses(kind: TitansMemory, model, bank: EpisodeBank, idx: Tensor, control_weight: float
                   ) -> tuple[Tensor, dict[str, float]]:
    """The outer loss of a batch and its metrics (answer NLL/accuracy written, shuffled, base)."""
    batch = bank.batch(idx)
    pred, target = batch.predictors()
    _write(kind, model, batch)
    written = kind.states
    lp_w = _answer_logprobs(model, batch, pred)
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
    loss = nll["written"].mean() + control_weight * kl
    metrics = {f"nll_{k}": v.mean().item() for k, v in nll.items()}
    metrics |= {f"acc_{k}": (lp.argmax(-1) == target).float().mean().item()
                for k, lp in (("written", lp_w), ("shuffled", lp_s), ("base", lp_b))}
    metrics |= {"kl_shuffled": kl.item(), "gap": metrics["nll_shuffled"] - metrics["nll_written"],
                "loss": loss.item()}
    return loss, metrics


@torch.no_grad()
def evaluate(kind: TitansMemory, model, bank: EpisodeBank, batch_size: int, control_weight: float = 1.0
             ) -> dict[str, float]:
    """Mean metrics over a bank (each batch's shuffled memories come from its other episodes)."""
    keep, kind.keep_graph = kind.keep_graph, False
    totals: dict[str, float] = {}
    batches = 0
    try:
        for s in range(0, len(bank) - 1, batch_size):
            idx = torch.arange(s, min(s + batch_size, len(bank)), device=bank.write_ids.device)
            if len(idx) < 2:
                break
            _, m = episode_losses(kind, model, bank, idx, control_weight)
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
    """The bank for a step: bank ``step // bank_refresh`` built from its own seed (resume-exact)."""

    def __init__(self, base, layer: int, cfg: MetaTrainConfig, progress: bool) -> None:
        self.base, self.layer, self.cfg, self.progress = base, layer, cfg, progress
        self.index, self.bank = -1, cast(EpisodeBank, None)  # built by the first ``for_step``

    def seed(self, index: int) -> int:
        return self.cfg.seed * 1_000_003 + index

    def build(self, seed: int, size: int) -> EpisodeBank:
        c = self.cfg
        return build_bank(self.base, self.layer, seed, size, facts=(c.facts[0], c.facts[1]),
                          queries=c.queries, chat_prob=c.chat_prob, progress=self.progress)

    def for_step(self, step: int) -> EpisodeBank:
        index = step // max(self.cfg.bank_refresh, 1)
        if index != self.index:
            self.bank, self.index = self.build(self.seed(index), self.cfg.bank_size), index
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
        banks = _Banks(base, kind.layers[0], cfg, progress)
        eval_bank = banks.build(cfg.seed * 1_000_003 - 1, cfg.eval_episodes)
        start, history, before = _start(kind, base, opt, banks, eval_bank, cfg, ckpt_path, resume)
        done, elapsed = _loop(kind, base, opt, banks, eval_bank, cfg, start, history, before, ckpt_path,
                              max_seconds, progress)
        after = evaluate(kind, base.model, eval_bank, cfg.batch_size, cfg.control_weight)
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
    before = evaluate(kind, base.model, eval_bank, cfg.batch_size, cfg.control_weight)
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
        idx = torch.randperm(len(bank), generator=gen)[: cfg.batch_size].to(bank.write_ids.device)
        loss, metrics = episode_losses(kind, base.model, bank, idx, cfg.control_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(kind.meta_parameters(), cfg.max_grad_norm)
        opt.step()
        kind.reset_memory(1)
        history.append({"step": step + 1, **{k: round(v, 4) for k, v in metrics.items()}})
        bar.set_postfix(gap=f"{metrics['gap']:+.3f}", nll=f"{metrics['nll_written']:.3f}")
        if cfg.eval_every and (step + 1) % cfg.eval_every == 0:
            history[-1]["eval"] = evaluate(kind, base.model, eval_bank, cfg.batch_size, cfg.control_weight)
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
