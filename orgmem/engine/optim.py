"""Periodic optimizer: each parameter group accumulates its gradient and steps at its boundary.

This is how CMS levels update at different frequencies without kind-specific trainer code: a
group with period ``k`` averages the gradients of ``k`` steps and applies one AdamW update; period
0 (``PERIOD_CONSOLIDATION``) steps once at the end of a consolidation. Everything needed to
continue exactly — AdamW moments, accumulated gradients and their counts, the step counter —
round-trips through ``state_tensors`` / ``load_state_tensors``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from orgmem.errors import IntegrityError
from orgmem.memory.interface import PERIOD_CONSOLIDATION, ParamGroup


class PeriodicOptimizer:
    """AdamW over ``ParamGroup``s with per-group update periods and gradient accumulation."""

    def __init__(self, groups: Sequence[ParamGroup], lr_scale: float = 1.0, grad_clip: float = 0.0,
                 warmup_updates: int = 0) -> None:
        self.groups = list(groups)
        self.grad_clip = grad_clip
        self.warmup_updates = warmup_updates
        self.base_lrs = [g.lr * lr_scale for g in self.groups]
        self.updates = [0] * len(self.groups)
        # A kind may train nothing by gradient (Titans writes its state in the forward pass).
        self.adam = torch.optim.AdamW(
            [{"params": g.params, "lr": g.lr * lr_scale, "weight_decay": g.weight_decay}
             for g in self.groups],
            betas=(0.9, 0.999), eps=1e-8, foreach=False,
        ) if self.groups else None
        self.acc = [[torch.zeros_like(p) for p in g.params] for g in self.groups]
        self.counts = [0] * len(self.groups)
        self.global_step = 0
        self.lr_factor = 1.0  # set per step by the consolidation's in-night schedule (not state)

    def params(self) -> list[torch.nn.Parameter]:
        return [p for g in self.groups for p in g.params]

    def accumulate(self) -> float:
        """Move this step's gradients (clipped) into the accumulators; returns the gradient norm."""
        params = [p for p in self.params() if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, self.grad_clip if self.grad_clip > 0 else float("inf"),
                                              foreach=False) if params else torch.tensor(0.0)
        for j, g in enumerate(self.groups):
            for acc, p in zip(self.acc[j], g.params, strict=True):
                if p.grad is not None:
                    acc.add_(p.grad)
                    p.grad = None
            self.counts[j] += 1
        self.global_step += 1
        due = [j for j, g in enumerate(self.groups) if g.period > 0 and self.global_step % g.period == 0]
        self._apply(due)
        return float(norm)

    def end_consolidation(self) -> None:
        """Apply the once-per-consolidation groups (their whole night's average gradient)."""
        self._apply([j for j, g in enumerate(self.groups) if g.period == PERIOD_CONSOLIDATION])

    def _apply(self, due: list[int]) -> None:
        due = [j for j in due if self.counts[j] > 0]
        if not due or self.adam is None:
            return
        for j, g in enumerate(self.groups):
            for acc, p in zip(self.acc[j], g.params, strict=True):
                p.grad = acc / self.counts[j] if j in due else None
            lr = self.base_lrs[j] * self._warmup(self.updates[j]) * self.lr_factor
            self.adam.param_groups[j]["lr"] = lr
        self.adam.step()
        for j in due:
            for acc in self.acc[j]:
                acc.zero_()
            self.counts[j] = 0
            self.updates[j] += 1
        for p in self.params():
            p.grad = None

    def _warmup(self, updates: int) -> float:
        """Linear ramp over a group's first updates. Why: AdamW's first updates move *every*
        weight by ~lr (m/sqrt(v) = sign(g) without history), which slow levels - always early in
        their own history - would otherwise do at each boundary (measured: it wrecks the model)."""
        return min(1.0, (updates + 1) / self.warmup_updates) if self.warmup_updates > 0 else 1.0

    # -- state -------------------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {"opt.global_step": torch.tensor(self.global_step, dtype=torch.int64)}
        for j, g in enumerate(self.groups):
            out[f"opt.{g.name}.count"] = torch.tensor(self.counts[j], dtype=torch.int64)
            out[f"opt.{g.name}.updates"] = torch.tensor(self.updates[j], dtype=torch.int64)
            for i, p in enumerate(g.params):
                out[f"opt.{g.name}.{i}.acc"] = self.acc[j][i]
                state = self.adam.state.get(p, {}) if self.adam is not None else {}
                for key in ("exp_avg", "exp_avg_sq", "step"):
                    if key in state:
                        out[f"opt.{g.name}.{i}.{key}"] = torch.as_tensor(state[key])
        return {k: v.detach().cpu().contiguous() for k, v in out.items()}

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        """Restore exactly; refuses state whose groups or shapes differ (another memory config)."""
        try:
            self.global_step = int(tensors["opt.global_step"])
            for j, g in enumerate(self.groups):
                self.counts[j] = int(tensors[f"opt.{g.name}.count"])
                self.updates[j] = int(tensors[f"opt.{g.name}.updates"])
                for i, p in enumerate(g.params):
                    acc = tensors[f"opt.{g.name}.{i}.acc"]
                    if acc.shape != p.shape:
                        raise IntegrityError(f"train state: {g.name}[{i}] has shape {tuple(acc.shape)}, "
                                             f"memory has {tuple(p.shape)}")
                    self.acc[j][i].copy_(acc)
                    if f"opt.{g.name}.{i}.step" in tensors and self.adam is not None:
                        self.adam.state[p] = {
                            "step": tensors[f"opt.{g.name}.{i}.step"].clone().float(),
                            "exp_avg": tensors[f"opt.{g.name}.{i}.exp_avg"].clone().to(p.device),
                            "exp_avg_sq": tensors[f"opt.{g.name}.{i}.exp_avg_sq"].clone().to(p.device),
                        }
        except KeyError as exc:
            raise IntegrityError(
                f"train state lacks {exc.args[0]!r}: made for another memory config") from exc
