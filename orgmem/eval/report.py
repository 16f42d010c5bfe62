"""The result of one evaluation: JSON-serialisable, with a headline summary and a printable table.

A gate, the CLI, the benchmark and the lineage rows all read the same ``summary()`` keys, so a
metric has one name everywhere.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field


@dataclass
class GroupStats:
    """Recall and NLL over one group of probes (all, new, retained, updated, night N, ...).

    A hit is the right answer without any replaced (stale) value; ``*_stale`` counts replies that
    still give a replaced value — what an update that did not take looks like.
    """

    n: int = 0
    cloze_hits: int = 0
    cloze_stale: int = 0
    n_question: int = 0
    question_hits: int = 0
    question_stale: int = 0
    answer_nll: float = float("nan")

    @property
    def cloze_recall(self) -> float:
        return self.cloze_hits / self.n if self.n else float("nan")

    @property
    def question_recall(self) -> float:
        return self.question_hits / self.n_question if self.n_question else float("nan")

    def to_dict(self) -> dict:
        return {**asdict(self), "cloze_recall": self.cloze_recall, "question_recall": self.question_recall}


@dataclass
class GenericStats:
    """Drift on the shipped generic set, relative to the cached base reference."""

    n_prompts: int
    replies_changed: int
    kl: float
    ppl: float
    base_ppl: float
    leakage: int
    leaks: list[dict] = field(default_factory=list)

    @property
    def ppl_ratio(self) -> float:
        return self.ppl / self.base_ppl if self.base_ppl else float("nan")

    def to_dict(self) -> dict:
        return {**asdict(self), "ppl_ratio": self.ppl_ratio}


@dataclass
class ProbeResult:
    key: str
    fact: str
    night: int
    kind: str
    group: str
    answer: str
    cloze_completion: str
    cloze_hit: bool
    cloze_stale: bool
    answer_nll: float
    reply: str | None = None
    question_hit: bool | None = None
    question_stale: bool | None = None


@dataclass
class EvalReport:
    night: int
    groups: dict[str, GroupStats]
    probes: list[ProbeResult]
    generic: GenericStats | None = None
    seconds: float = 0.0
    meta: dict = field(default_factory=dict)

    def _group(self, name: str) -> GroupStats:
        return self.groups.get(name, GroupStats())

    def summary(self) -> dict[str, float | int | None]:
        """Headline metrics (NaN where the probe set has no such group; None without a reference)."""
        all_, retained, updated = self._group("all"), self._group("retained"), self._group("updated")
        g = self.generic
        return {
            "n_probes": all_.n,
            "cloze_recall": all_.cloze_recall,
            "question_recall": all_.question_recall,
            "answer_nll": all_.answer_nll,
            "new_cloze_recall": self._group("new").cloze_recall,
            "retention": retained.cloze_recall,
            "retention_question": retained.question_recall,
            "update_accuracy": updated.cloze_recall,
            "update_accuracy_question": updated.question_recall,
            "stale_answers": updated.cloze_stale + updated.question_stale,
            "ppl": g.ppl if g else None,
            "ppl_ratio": g.ppl_ratio if g else None,
            "kl": g.kl if g else None,
            "replies_changed": g.replies_changed if g else None,
            "n_generic_prompts": g.n_prompts if g else None,
            "leakage": g.leakage if g else None,
        }

    def to_dict(self) -> dict:
        return {
            "night": self.night,
            "summary": self.summary(),
            "groups": {k: v.to_dict() for k, v in self.groups.items()},
            "generic": self.generic.to_dict() if self.generic else None,
            "probes": [asdict(p) for p in self.probes],
            "seconds": self.seconds,
            "meta": self.meta,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(finite_json(self.to_dict()), indent=indent, ensure_ascii=False)

    def table(self) -> str:
        """Plain-text table: one row per probe group, then the drift metrics."""
        rows = [("group", "n", "cloze", "question", "answer NLL", "stale")]
        for name, s in self.groups.items():
            rows.append((name, str(s.n), _frac(s.cloze_hits, s.n), _frac(s.question_hits, s.n_question),
                         _num(s.answer_nll), str(s.cloze_stale + s.question_stale)))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        if self.generic:
            g = self.generic
            lines += ["", f"generic ppl {g.ppl:.2f} (base {g.base_ppl:.2f}, ratio {g.ppl_ratio:.3f})  "
                          f"KL to base {g.kl:.4f}  replies changed {g.replies_changed}/{g.n_prompts}  "
                          f"leakage {g.leakage}/{g.n_prompts}"]
        lines.append(f"night {self.night}, {self.seconds:.1f} s")
        return "\n".join(lines)


def _frac(hits: int, n: int) -> str:
    return f"{hits}/{n} ({hits / n:.0%})" if n else "-"


def _num(x: float) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.3f}"


def finite_json(obj):
    """NaN/inf → None so the JSON is standard (json.dumps would write bare NaN, which PostgreSQL's
    JSON columns refuse)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_json(v) for v in obj]
    return obj
