"""A checkpoint's metrics in named sections: what the gate judged, and what produced the checkpoint.

Stored as one JSON object (``Checkpoint.metrics``): the evaluation's numbers at the top level, where
the gate's thresholds (``orgmem.gate.decide``), the console's charts and ``orgmem lineage`` read
them, and each section under its own key. Checkpoints written before the sections were named hold
the same flat object, some without every section (``governance`` only once it was recorded,
``underlay`` only for a group, hand-made ones a bare ``{"recall": 0.5}``): ``from_json`` reads any
of them, and ``from_json(d).to_json() == d``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: The named sections, in the order they are stored after the evaluation's numbers.
SECTIONS = ("engine", "gate", "underlay", "governance", "feedback")


@dataclass
class CheckpointMetrics:
    """``evaluation``: the candidate measured against its parent (``orgmem.pipeline.evaluation``);
    ``engine``: what training reported (steps, losses, tokens, processes); ``gate``: the verdict
    (``GateDecision.to_dict()``); ``underlay``: a group's, the org checkpoint it was trained and
    judged on; ``governance``: the rule set and redactions its training data went through;
    ``feedback``: the approved corrections it trained and how many answers they changed
    (``orgmem.pipeline.feedback_report``; absent from checkpoints without any, and older ones).
    A section that is ``None`` is not stored."""

    evaluation: dict[str, Any] = field(default_factory=dict)
    engine: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None
    underlay: dict[str, Any] | None = None
    governance: dict[str, Any] | None = None
    feedback: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        clash = [name for name in SECTIONS if name in self.evaluation and getattr(self, name) is not None]
        if clash:
            raise ValueError(f"evaluation keys {clash} are the names of metric sections")

    def to_json(self) -> dict[str, Any]:
        """The stored form: the evaluation's numbers flat, each section that is set under its name."""
        out = dict(self.evaluation)
        for name in SECTIONS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> CheckpointMetrics:
        """Read a stored object, old or new; a section key whose value is not an object stays
        among the evaluation's numbers, so nothing stored is lost or reinterpreted."""
        flat = dict(data or {})
        sections = {name: flat.pop(name) for name in SECTIONS if isinstance(flat.get(name), dict)}
        return cls(evaluation=flat, **sections)


def feedback_summary(metrics: Mapping[str, Any] | None) -> str | None:
    """One line on what user-supplied material changed (the ``feedback`` section), None without it."""
    section = (metrics or {}).get("feedback")
    if not isinstance(section, dict):
        return None
    return (f"{section.get('corrections', 0)} user correction(s): {section.get('answers_changed', 0)} "
            f"answer(s) changed, {section.get('answers_corrected', 0)} now corrected, "
            f"{section.get('answers_still_old', 0)} still old")
