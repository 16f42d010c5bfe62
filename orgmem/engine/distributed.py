"""Data parallelism for one night: every rank plans the same steps and trains its shard of each.

Why this is equal to one process: every rank builds the same items and the same plan from the same
seeded ``random.Random`` (it consumes it identically), so only the work of a step is split. Rank
``r`` trains ``items[r::W]`` of each step's material and ``rehearsal[W-1-r::W]`` of its rehearsal
(the last rank first, so the rank with the most material gets no rehearsal). Each loss term is a
mean over the step's tokens in one process; here each rank divides its *sum* by the *global* count,
which the plan gives without communication, so the sum over ranks is the single-process loss:

- cross-entropy: sum of the rank's target-token losses / the step's target tokens;
- KL on rehearsal: sum over the rank's rehearsal targets / the step's rehearsal targets;
- the memory's token-mean auxiliary terms (CMS gate sparsity): the rank's mean times its share of
  the step's masked tokens (sum over ranks = the global mean, layer by layer).

Gradients are then summed over ranks (one flat bucket) before ``PeriodicOptimizer.accumulate``,
so clipping and AdamW see the full gradient and every rank applies the same update. Floating-point
summation order differs from one process, so results agree to rounding, not bit for bit.

Not supported (refused with ``OrgmemError``): the curriculum (its plan depends on each step's
per-item losses), context distillation (its teacher references are not computed per shard), and
memories that write state in the forward pass (Titans: each rank would write only its shard).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

from orgmem.engine.config import ConsolidationConfig
from orgmem.engine.items import Item
from orgmem.engine.packing import compute_lower
from orgmem.errors import OrgmemError

#: Memory kinds that learn only by gradient (a rank's forward pass changes nothing).
GRADIENT_KINDS = ("cms", "lora")
ItemT = TypeVar("ItemT", bound=Item)


def check_supported(config: ConsolidationConfig) -> None:
    """Refuse a recipe that data parallelism cannot reproduce (before any process is started)."""
    if config.curriculum and config.chat_forms:
        raise OrgmemError(
            "data-parallel consolidation does not support the curriculum "
            "(curriculum=true): set ORGMEM_CONSOLIDATE_PROCS=1 or curriculum=false"
        )
    if config.context_distill > 0:
        raise OrgmemError(
            "data-parallel consolidation does not support context distillation "
            "(context_distill > 0): set ORGMEM_CONSOLIDATE_PROCS=1 or context_distill=0"
        )


@dataclass(frozen=True)
class StepShare:
    """What one rank's loss terms are divided by / multiplied with (see the module docstring)."""

    targets: int  # the step's material target tokens (all ranks)
    rehearsal_targets: int  # the step's rehearsal target tokens (all ranks)
    aux_share: float  # this rank's share of the step's tokens the aux terms average over
    dummy: bool = False  # this rank got nothing: it runs one item at weight 0 to join the reduce


@dataclass
class DataParallel:
    """This process's place in an initialised ``torch.distributed`` group."""

    rank: int
    world_size: int

    @classmethod
    def current(cls) -> DataParallel | None:
        """The initialised default group, or None when there is none or it has one process."""
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return None
        return cls(dist.get_rank(), dist.get_world_size())

    # -- sharding ----------------------------------------------------------------------------------
    def material(self, items: Sequence[ItemT]) -> list[ItemT]:
        return list(items[self.rank :: self.world_size])

    def rehearsal(self, items: Sequence[ItemT]) -> list[ItemT]:
        return list(items[self.world_size - 1 - self.rank :: self.world_size])

    def share(self, items: Sequence[Item], rehearsal: Sequence[Item], scope: str) -> StepShare:
        """This rank's weights for one step, from the plan alone (no communication)."""
        mine, mine_r = self.material(items), self.rehearsal(rehearsal)
        if scope == "all":  # aux terms average over every real token of the packed rows
            total = sum(len(it) for it in (*items, *rehearsal))
            local = sum(len(it) for it in (*mine, *mine_r))
        else:  # rehearsal tokens only
            total = sum(len(it) for it in rehearsal)
            local = sum(len(it) for it in mine_r)
        return StepShare(
            sum(it.n_targets for it in items),
            sum(it.n_targets for it in rehearsal),
            local / total if total else 0.0,
            dummy=not mine and not mine_r,
        )

    # -- collectives -------------------------------------------------------------------------------
    def compute_lower(
        self, model, items: Sequence[Item], first_layer: int, max_len: int, device: torch.device
    ) -> None:
        """Each rank computes the lower layers for ``items[rank::W]``, then every rank receives the
        others' (one broadcast per rank): the work is split, every rank can train any item."""
        compute_lower(model, self.material(items), first_layer, max_len, device)
        width = int(model.config.hidden_size)
        dtype = next(model.parameters()).dtype
        for src in range(self.world_size):
            part = list(items[src :: self.world_size])
            if not part:
                continue
            if src == self.rank:
                flat = torch.cat([it.lower_hidden().reshape(-1, width) for it in part]).contiguous()
            else:
                flat = torch.empty(sum(len(it) for it in part), width, dtype=dtype, device=device)
            dist.broadcast(flat, src)
            if src != self.rank:
                for it, piece in zip(part, flat.split([len(it) for it in part]), strict=True):
                    it.hidden = piece.clone()

    def reduce_grads(self, params: Sequence[torch.nn.Parameter]) -> None:
        """Sum every parameter's gradient over ranks (a missing gradient counts as zero)."""
        if not params:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        for p, piece in zip(params, flat.split([g.numel() for g in grads]), strict=True):
            p.grad = piece.view_as(p).clone()

    def reduce_metrics(self, out: dict[str, float], keep: Sequence[str] = ("grad_norm",)) -> dict[str, float]:
        """Sum each step metric over ranks (the loss parts sum to the global value), except
        ``keep`` (equal on every rank, e.g. the norm of the already reduced gradient)."""
        keys = sorted(k for k in out if k not in keep)
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
        values = torch.tensor([float(out[k]) for k in keys], dtype=torch.float64, device=device)
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        summed = dict(zip(keys, values.tolist(), strict=True))
        summed["tokens"] = int(round(summed.get("tokens", 0)))
        return {**out, **summed}


def launched_world() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from the launcher's environment variables."""
    return (
        int(os.environ["RANK"]),
        int(os.environ.get("LOCAL_RANK", os.environ["RANK"])),
        int(os.environ["WORLD_SIZE"]),
    )
