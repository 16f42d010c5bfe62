"""Consolidation: write chunks into an org's memory on a frozen base, with drift control.

One optimizer step = a token budget of material items (text windows, statements, derived chat
turns; tonight's chunks for ``epochs`` passes plus replay of older chunks) packed into rows with
a few rehearsal sequences. Loss = cross-entropy on the material targets + ``kl_weight`` ·
KL(base‖adapted) on the rehearsal (reference precomputed once) + the memory's auxiliary terms
(CMS gate sparsity), and, for reviewed corrections, an unlikelihood term on the model's old
answers (``corrections.py``). Only the memory-carrying upper layers run per step; the lower layers'
output is computed once per item.

Exactness: all randomness comes from one ``random.Random`` whose state is saved in the train
state with the optimizer's moments, accumulated level gradients and counters, so night 1 then
night 2 (resumed from bytes) equals one ``Consolidator`` running both nights in the same order.

Data parallel: given a ``DataParallel`` (``orgmem.engine.distributed``), every rank plans the same
steps and trains its shard of each, with losses scaled and gradients summed so that the update is
the single-process one up to rounding (the curriculum and context distillation are refused).
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from orgmem.engine.asked import written_questions
from orgmem.engine.config import ConsolidationConfig
from orgmem.engine.corrections import CorrectionPlan, is_unlikely, plan_items
from orgmem.engine.curriculum import Curriculum, CurriculumConfig, night_facts
from orgmem.engine.distill import fill_teacher, teacher_rows
from orgmem.engine.distributed import GRADIENT_KINDS, DataParallel, StepShare, check_supported
from orgmem.engine.forms import answers
from orgmem.engine.items import Item, build_items, statement_items, text_items
from orgmem.engine.layers import run_packed
from orgmem.engine.optim import PeriodicOptimizer
from orgmem.engine.packing import compute_lower, pack, row_tensor
from orgmem.engine.rehearsal import RehearsalItem, rehearsal_set, topk_kl
from orgmem.engine.state import TrainState, dump_train_state, parse_train_state, rng_tuple
from orgmem.engine.underlay import Underlay, underlay_reference
from orgmem.errors import OrgmemError
from orgmem.memory import MemoryHandle, attach, load_memory, save_memory
from orgmem.models.layers import final_hidden, lm_logits

StepCallback = Callable[[int, int, dict[str, float]], None]
"""``on_step(steps_done, steps_total, this step's losses)``."""

logger = logging.getLogger(__name__)


@dataclass
class ConsolidationResult:
    """New memory + train state (bytes, ready for the object store) and what happened."""

    memory: bytes
    train_state: bytes
    metrics: dict = field(default_factory=dict)
    n_tokens: int = 0
    seconds: float = 0.0


@contextmanager
def torch_threads(n: int | None):
    """Use ``n`` CPU threads (default: all cores) inside, restoring the caller's setting after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, n or os.cpu_count() or 1))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _per_item_means(per_token: torch.Tensor, counts: Sequence[int]) -> list[float]:
    """Mean of each item's slice of the flat per-token losses (items in ``_gather`` order)."""
    return [float(part.mean()) if len(part) else 0.0 for part in per_token.split(list(counts))]


def _repeat(items: Sequence[Item], epochs: float, rng: random.Random) -> list[Item]:
    """``epochs`` shuffled passes over ``items`` (a fractional last pass takes a prefix)."""
    out: list[Item] = []
    whole = int(epochs)
    for _ in range(whole):
        pass_ = list(items)
        rng.shuffle(pass_)
        out += pass_
    rest = list(items)
    rng.shuffle(rest)
    return out + rest[: round((epochs - whole) * len(rest))]


def plan_steps(new: Sequence[Item], replay: Sequence[Item], config: ConsolidationConfig,
               rng: random.Random) -> list[list[Item]]:
    """Items per optimizer step: ``epochs`` shuffled passes over ``new`` with replay mixed in."""
    passes = math.ceil(config.epochs)
    replay_rate = config.replay_epochs / passes
    sequence: list[Item] = []
    for e in range(passes):
        pool = list(new)
        rng.shuffle(pool)
        if e == passes - 1 and config.epochs < passes:
            pool = pool[: round((config.epochs - e) * len(pool))]
        for item in replay:
            copies = int(replay_rate) + (1 if rng.random() < replay_rate % 1 else 0)
            pool.extend([item] * copies)
        rng.shuffle(pool)
        sequence.extend(pool)
    steps: list[list[Item]] = [[]]
    used = 0
    for item in sequence:
        if used >= config.tokens_per_step:
            steps.append([])
            used = 0
        steps[-1].append(item)
        used += len(item)
    steps = [s for s in steps if s]
    return steps[: config.max_steps] if config.max_steps else steps


def _gather(items: Sequence[Item], where: Sequence[tuple[int, int]]
            ) -> tuple[list[int], list[int], list[int]]:
    """Row, column (position predicting the target) and label of every target token."""
    rows, cols, labels = [], [], []
    for item, (r, off) in zip(items, where, strict=True):
        t = item.targets.nonzero().squeeze(-1)
        rows += [r] * len(t)
        cols += (t - 1 + off).tolist()
        labels += item.ids[t].tolist()
    return rows, cols, labels


class Consolidator:
    """A memory being trained; ``run`` may be called for several nights in one process."""

    handle: MemoryHandle  # set first thing in ``__init__``; ``close`` copes with a failed one

    def __init__(self, base, parent: bytes | MemoryHandle | None = None,
                 config: ConsolidationConfig | None = None, *, train_state: bytes | None = None,
                 underlay: bytes | None = None, world: DataParallel | None = None) -> None:
        self.base = base
        self.config = config or ConsolidationConfig()
        self.world = world  # None: one process; else this rank of a data-parallel night
        if world is not None:
            check_supported(self.config)
        self.owns_handle = not isinstance(parent, MemoryHandle)
        self.underlay: Underlay | None = None
        try:
            if underlay is not None:  # frozen beneath the trained memory, as serving stacks them
                self.underlay = Underlay(base, underlay, source="underlay memory").attach()
            if isinstance(parent, MemoryHandle):
                self.handle = parent
            elif isinstance(parent, bytes | bytearray):
                self.handle = load_memory(base, bytes(parent), source="parent memory")
            else:
                self.handle = attach(base, self.config.memory)
            self.first_layer = min(min(c.layers) for c in self.handle.components)
            if world is not None and (kinds := [c.config.kind for c in self.handle.components
                                                if c.config.kind not in GRADIENT_KINDS]):
                raise OrgmemError(f"data-parallel consolidation supports memories that learn by gradient "
                                  f"only ({', '.join(GRADIENT_KINDS)}), not {', '.join(kinds)}: a rank's "
                                  "forward-pass writes would see only its shard")
            if self.underlay is not None:  # lower layers are computed once: they must be the base's
                self.first_layer = min(self.first_layer, self.underlay.lowest_layer)
            self.optimizer = PeriodicOptimizer(self.handle.param_groups(), self.config.lr_scale,
                                               self.config.grad_clip, self.config.warmup_updates)
            self.rng = random.Random(self.config.seed)  # nosec B311  # seeded training order: no secret
            self.consolidations = 0
            self.corrections = CorrectionPlan()  # this night's reviewed corrections (``run``)
            if train_state is not None:
                self._load_train_state(train_state)
        except BaseException:
            self.close()  # never leave a half-built memory attached to the shared base
            raise

    # -- state -------------------------------------------------------------------------------------
    def _load_train_state(self, data: bytes) -> None:
        state = parse_train_state(data, base_fingerprint=self.base.fingerprint,
                                  memory_config=self.handle.config, source="parent train state")
        self.optimizer.load_state_tensors(state.optimizer)
        self.handle.load_train_state_dict(state.memory)
        self.rng.setstate(rng_tuple(state))
        self.consolidations = state.consolidations

    def train_state_bytes(self) -> bytes:
        return dump_train_state(TrainState(self.optimizer.state_tensors(), self.handle.train_state_dict(),
                                           list(self.rng.getstate()), self.consolidations, self.handle.config,
                                           self.base.fingerprint))

    def memory_bytes(self) -> bytes:
        return save_memory(self.handle)

    def close(self) -> None:
        """Detach the memory if this consolidator attached it, and the underlay."""
        handle = getattr(self, "handle", None)
        if self.owns_handle and handle is not None:
            handle.detach()
        if self.underlay is not None:
            self.underlay.detach()

    # -- one step ----------------------------------------------------------------------------------
    def _step(self, items: list[Item], rehearsal: list[RehearsalItem]
              ) -> tuple[dict[str, float], list[float]]:
        """One optimizer step; returns its losses and each material item's mean target loss
        (data parallel: the step's global losses, and this rank's items' mean losses)."""
        if self.world is None:
            return self._train_rows(items, rehearsal)
        share = self.world.share(items, rehearsal, self.config.sparsity_scope)
        mine, mine_r = self.world.material(items), self.world.rehearsal(rehearsal)
        out, losses = self._train_rows(items[:1] if share.dummy else mine, mine_r, share)
        return self.world.reduce_metrics(out), losses

    def _train_rows(self, items: list[Item], rehearsal: list[RehearsalItem], share: StepShare | None = None
                    ) -> tuple[dict[str, float], list[float]]:
        """Forward, loss, backward and accumulate for these items. ``share`` (data parallel): each
        term is this rank's part of the step's global mean, and gradients are summed over ranks."""
        model, device, cfg = self.base.model, self.base.device, self.config
        everything = [*items, *rehearsal]
        packed = pack(everything, cfg.max_seq_len)
        hidden = row_tensor(packed, [it.lower_hidden() for it in everything]).to(device, self.base.dtype)
        segments = packed.segments.to(device)
        self.handle.set_segments(segments)
        try:
            h = run_packed(model, hidden, packed.positions.to(device), segments, self.first_layer,
                           self.base.num_layers)
        finally:
            self.handle.set_segments(None)
        h = final_hidden(model, h)
        n_mat = len(items)
        rows, cols, labels = _gather(items, packed.where[:n_mat])
        logits = lm_logits(model, h[rows, cols]).float()
        per_token = F.cross_entropy(logits, torch.tensor(labels, dtype=torch.long, device=device),
                                    reduction="none")
        unlikely = self._unlikely_mask(items).to(device)
        if share is None:
            if not bool(unlikely.any()):
                ce = per_token.mean()  # the plain night: exactly the data-parallel split's arithmetic
            elif bool((~unlikely).any()):
                ce = per_token[~unlikely].mean()
            else:
                ce = per_token.sum() * 0.0
        else:  # a dummy rank (nothing to train this step) runs one item at weight 0
            ce = per_token.sum() * (0.0 if share.dummy else 1.0 / max(share.targets, 1))
        loss, out = ce, {"ce": ce.item()}
        if bool(unlikely.any()):  # -log(1 - p) on the old answers' tokens (corrections.py)
            p_old = torch.exp(-per_token[unlikely]).clamp(max=1.0 - 1e-6)
            ul = -torch.log1p(-p_old).mean()
            loss = loss + self.corrections.unlikelihood * ul
            out["ul"] = ul.item()
        if cfg.context_distill > 0 and (taught := teacher_rows(items)) is not None:
            sel, t_idx, t_logp, t_rest = taught
            cd = topk_kl(logits[sel.to(device)], t_idx.to(device), t_logp.to(device), t_rest.to(device))
            loss = loss + cfg.context_distill * cd
            out["cd"] = cd.item()
        if rehearsal and cfg.kl_weight > 0:
            r_rows, r_cols, _ = _gather(rehearsal, packed.where[n_mat:])
            refs = [r.reference() for r in rehearsal]
            kl = topk_kl(lm_logits(model, h[r_rows, r_cols]),
                         torch.cat([idx for idx, _, _ in refs]).to(device),
                         torch.cat([logp for _, logp, _ in refs]).to(device),
                         torch.cat([rest for _, _, rest in refs]).to(device),
                         reduction="mean" if share is None else "sum")
            if share is not None:
                kl = kl / share.rehearsal_targets
            loss = loss + cfg.kl_weight * kl
            out["kl"] = kl.item()
        elif share is not None and share.rehearsal_targets and cfg.kl_weight > 0:
            out["kl"] = 0.0  # other ranks train this step's rehearsal: same metric keys everywhere
        for name, value in self.handle.aux_losses(self._sparsity_mask(packed, n_mat).to(device)).items():
            if share is not None:
                value = value * share.aux_share
            loss = loss + value
            out[name] = value.item()
        if loss.requires_grad:  # False when the memory learns only by its forward-pass writes
            loss.backward()
        if share is not None and self.world is not None:
            self.world.reduce_grads(self.optimizer.params())
        out["grad_norm"] = self.optimizer.accumulate()
        out["tokens"] = 0 if share is not None and share.dummy else int(packed.real.sum())
        return out, _per_item_means(per_token.detach(), [it.n_targets for it in items])

    @staticmethod
    def _unlikely_mask(items: Sequence[Item]) -> torch.Tensor:
        """Per target token (in ``_gather`` order): is it an old answer's token, to push down."""
        return torch.tensor([is_unlikely(it) for it in items for _ in range(it.n_targets)], dtype=torch.bool)

    def _sparsity_mask(self, packed, n_material: int) -> torch.Tensor:
        """Tokens the gate-sparsity term averages over: every real token, or rehearsal tokens only."""
        if self.config.sparsity_scope == "all":
            return packed.real
        return packed.segments >= n_material

    # -- a night -----------------------------------------------------------------------------------
    def _prepare(self, new_chunks: Sequence[str], replay_chunks: Sequence[str]):
        cfg = self.config
        asked = self._written_questions([*new_chunks, *replay_chunks])
        new = build_items(self.base.tokenizer, new_chunks, cfg, self.rng, asked)
        new += plan_items(self.base.tokenizer, self.corrections, cfg.max_seq_len)
        replay = build_items(self.base.tokenizer, replay_chunks, cfg, self.rng, asked)
        if not new and not replay:
            raise OrgmemError(f"nothing to consolidate: {len(new_chunks)} new and {len(replay_chunks)} "
                              "replay chunks gave no trainable text")
        lower = compute_lower if self.world is None else self.world.compute_lower
        lower(self.base.model, [*new, *replay], self.first_layer, cfg.max_seq_len, self.base.device)
        if cfg.context_distill > 0:
            with self._bare_base():
                taught = fill_teacher(self.base, [*new, *replay], cfg.kl_topk)
            logger.info("context distillation references", extra={"items": taught})
        rehearsal = self._rehearsal() if cfg.kl_weight > 0 and cfg.rehearsal_per_step > 0 else []
        return new, replay, rehearsal

    def _written_questions(self, chunks: Sequence[str]) -> dict[str, str]:
        """The base model's own question per chat answer (``asked.py``), every memory switched off."""
        cfg = self.config
        if not (cfg.chat_forms and cfg.written_questions):
            return {}
        with self._bare_base():
            return written_questions(self.base, answers(chunks, cfg.value_answers))

    @contextmanager
    def _bare_base(self):
        """Every memory off (the trained one and the underlay): the base's own function."""
        with self.handle.disabled(), (self.underlay.disabled() if self.underlay else nullcontext()):
            yield

    def _rehearsal(self) -> list[RehearsalItem]:
        """Rehearsal items whose reference is the function beneath the trained memory: the bare base
        (cached per base, so computed with every memory off), or the base with the underlay on."""
        cfg = self.config
        with self._bare_base():
            items = rehearsal_set(self.base, self.first_layer, cfg.kl_topk, cfg.max_seq_len)
        if self.underlay is None:
            return items
        with self.handle.disabled():
            return underlay_reference(self.base, items, self.first_layer, cfg.kl_topk, cfg.max_seq_len)

    def run(self, new_chunks: Sequence[str], replay_chunks: Sequence[str] = (), *, progress: bool = True,
            log_extra: dict | None = None, on_step: StepCallback | None = None,
            corrections: CorrectionPlan | None = None) -> dict:
        """Train on one night's chunks (and reviewed ``corrections``); returns metrics. The memory
        stays attached.

        ``on_step(done, total, losses)`` is called after every optimizer step (job progress)."""
        cfg = self.config
        self.corrections = corrections or CorrectionPlan()
        if self.corrections and self.world is not None:
            raise OrgmemError("corrections train in one process (their unlikelihood term is not sharded); "
                              "the pipeline runs such a night with ORGMEM_CONSOLIDATE_PROCS=1")
        with torch_threads(cfg.num_threads if self.base.device.type == "cpu" else None):
            t0 = time.time()
            self.handle.train()
            if cfg.curriculum and cfg.chat_forms:
                history, new, replay, extra, t_prep = self._run_curriculum(
                    new_chunks, replay_chunks, progress, on_step, t0)
            else:
                history, new, replay, extra, t_prep = self._run_fixed(
                    new_chunks, replay_chunks, progress, on_step, t0)
            self.optimizer.end_consolidation()
            self.handle.eval()
            self.consolidations += 1
            seconds = time.time() - t0
        metrics = {**self._metrics(history, new, replay, t_prep, seconds), **extra}
        logger.info("consolidation finished", extra={**(log_extra or {}), "steps": len(history),
                                                     "seconds": round(seconds, 1),
                                                     "loss_last": metrics.get("loss_last"),
                                                     **{k: v for k, v in extra.items() if k != "curriculum"}})
        return metrics

    def _run_fixed(self, new_chunks, replay_chunks, progress, on_step, t0):
        """``epochs`` shuffled passes over fixed forms (the recipe before the curriculum)."""
        cfg = self.config
        new, replay, rehearsal = self._prepare(new_chunks, replay_chunks)
        steps = plan_steps(new, replay, cfg, self.rng)
        t_prep = time.time() - t0
        history: list[dict[str, float]] = []
        bar = tqdm(steps, desc="consolidate", unit="step", disable=not progress, leave=False)
        for i, items in enumerate(bar):
            self.optimizer.lr_factor = night_lr_factor(i, len(steps), cfg.lr_decay)
            chosen = self.rng.sample(rehearsal, min(cfg.rehearsal_per_step, len(rehearsal)))
            history.append(self._step(items, chosen)[0])
            bar.set_postfix(loss=f"{history[-1]['ce']:.3f}", kl=f"{history[-1].get('kl', 0):.4f}")
            if on_step is not None:
                on_step(len(history), len(steps), history[-1])
        return history, new, replay, {}, t_prep

    def _run_curriculum(self, new_chunks, replay_chunks, progress, on_step, t0):
        """Facts drilled until stored (``curriculum.py``); documents and replay ride along."""
        cfg = self.config
        tok = self.base.tokenizer
        docs = [*(text_items(tok, new_chunks, cfg.max_seq_len) if cfg.text_forms else []),
                *(statement_items(tok, new_chunks, cfg.max_seq_len) if cfg.statement_forms else []),
                *plan_items(tok, self.corrections, cfg.max_seq_len)]
        replay = build_items(tok, replay_chunks, cfg, self.rng, {})
        facts = night_facts(new_chunks)
        if not docs and not replay and not facts:
            raise OrgmemError(f"nothing to consolidate: {len(new_chunks)} new and {len(replay_chunks)} "
                              "replay chunks gave no trainable text")
        compute_lower(self.base.model, [*docs, *replay], self.first_layer, cfg.max_seq_len, self.base.device)
        documents = _repeat(docs, cfg.doc_epochs, self.rng) + _repeat(replay, cfg.replay_epochs, self.rng)
        rehearsal = self._rehearsal() if cfg.kl_weight > 0 and cfg.rehearsal_per_step > 0 else []
        plan = Curriculum(tok, facts, documents, CurriculumConfig(
            cfg.fact_share, cfg.stored_loss, cfg.stored_hits, cfg.max_exposures, cfg.min_exposures,
            cfg.review_rate), cfg.tokens_per_step, cfg.max_seq_len, self.rng)
        cap = min(plan.max_steps(), cfg.max_steps or plan.max_steps())
        t_prep = time.time() - t0
        history: list[dict[str, float]] = []
        bar = tqdm(total=cap, desc="consolidate", unit="step", disable=not progress, leave=False)
        while not plan.done and len(history) < cap:
            drawn = plan.next_step()
            items = [item for item, _ in drawn]
            if not items:  # every drawn pair was too long for max_seq_len: nothing to learn this step
                continue
            compute_lower(self.base.model, items, self.first_layer, cfg.max_seq_len, self.base.device)
            self.optimizer.lr_factor = night_lr_factor(len(history), cap, cfg.lr_decay)
            chosen = self.rng.sample(rehearsal, min(cfg.rehearsal_per_step, len(rehearsal)))
            out, losses = self._step(items, chosen)
            plan.observe(drawn, losses)
            history.append(out)
            bar.update(1)
            bar.set_postfix(loss=f"{out['ce']:.3f}", kl=f"{out.get('kl', 0):.4f}",
                            stored=f"{plan.summary()['facts_stored']}/{len(facts)}")
            if on_step is not None:
                on_step(len(history), len(history) if plan.done else max(len(history) + 1, cap), out)
        bar.close()
        summary = plan.summary()
        new = [*docs, *(it for st in plan.states for it in st.items.values())]
        return history, new, replay, {"curriculum": summary, "facts": summary["facts"],
                                      "facts_stored": summary["facts_stored"]}, t_prep

    def _metrics(self, history, new, replay, t_prep, seconds) -> dict:
        def mean(key: str, part: list[dict]) -> float | None:
            values = [h[key] for h in part if key in h]
            return round(sum(values) / len(values), 5) if values else None

        head, tail = history[:3], history[-3:]
        tokens = sum(h["tokens"] for h in history)
        train_s = max(seconds - t_prep, 1e-9)
        metrics = {
            "steps": len(history), "loss_first": mean("ce", head), "loss_last": mean("ce", tail),
            "kl_last": mean("kl", tail), "tokens": tokens, "tokens_per_s": round(tokens / train_s, 1),
            "seconds": round(seconds, 2), "seconds_prepare": round(t_prep, 2),
            "items": {k: sum(1 for it in new if it.kind == k)
                      for k in ("text", "statement", "chat", "fact", "correction", "unlikely")},
            "replay_items": len(replay), "trainable_params": self.handle.num_trainable(),
            "global_step": self.optimizer.global_step, "consolidations": self.consolidations,
            "loss_curve": [round(h["ce"], 3) for h in history],
            "kl_curve": [round(h.get("kl", 0.0), 4) for h in history],
        }
        for key in {k for h in history for k in h if "." in k}:
            metrics[f"{key}_last"] = mean(key, tail)
        return metrics


def night_lr_factor(step: int, total: int, final: float) -> float:
    """Cosine from 1 at a night's first step to ``final`` at its last (1 = constant)."""
    if final >= 1.0 or total <= 1:
        return 1.0
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * step / (total - 1)))


def consolidate(base, parent: bytes | MemoryHandle | None, new_chunks: list[str], replay_chunks: list[str],  # noqa: PLR0913  # the engine's entry point: the night's inputs, then keyword-only options
                config: ConsolidationConfig | None = None, *, train_state: bytes | None = None,
                progress: bool = True, log_extra: dict | None = None,
                underlay: bytes | None = None, on_step: StepCallback | None = None,
                world: DataParallel | None = None,
                corrections: CorrectionPlan | None = None) -> ConsolidationResult:
    """Write ``new_chunks`` (plus ``replay_chunks``) into the memory of ``parent`` (or a fresh one).

    ``parent``: saved memory bytes, an attached handle (trained in place), or None for a new memory
    of ``config.memory``. ``train_state``: the parent's train state bytes to continue exactly.
    ``underlay``: saved memory bytes applied frozen beneath it (a group's memory trains on the
    org's, as serving stacks them; see ``orgmem.engine.underlay``). ``world``: this process's rank
    of a data-parallel night (``orgmem.engine.distributed``; ``orgmem.engine.launch`` starts one).
    ``corrections``: reviewed corrections to teach with priority (``orgmem.engine.corrections``).
    """
    t0 = time.time()
    job = Consolidator(base, parent, config, train_state=train_state, underlay=underlay, world=world)
    try:
        metrics = job.run(new_chunks, replay_chunks, progress=progress, log_extra=log_extra, on_step=on_step,
                          corrections=corrections)
        memory, state = job.memory_bytes(), job.train_state_bytes()
    finally:
        job.close()
    metrics["memory_bytes"] = len(memory)
    metrics["train_state_bytes"] = len(state)
    if job.underlay is not None:
        metrics["underlay_sha256"] = job.underlay.sha256
    return ConsolidationResult(memory, state, metrics, metrics["tokens"], time.time() - t0)
