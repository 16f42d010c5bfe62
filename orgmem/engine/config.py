"""``ConsolidationConfig``: every knob of one consolidation, JSON-serialisable for lineage.

Defaults are the measured recipe (SmolLM2 runs, ``docs/knowledge_tuning.md``): material in three forms (raw
text windows, standalone statements, derived chat Q → A), a KL(base‖adapted) term on rehearsal
text the base wrote itself (weight 30), the memory's gate-sparsity term, replay of older chunks.
The step shape (512 material tokens, 1 rehearsal sequence, 6 chat turns per conversation, 3
questions per statement) is from the night-1 sweeps logged in ``docs/knowledge_tuning.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

from orgmem.errors import OrgmemError

DataclassT = TypeVar("DataclassT")


def from_known_fields(
    cls: type[DataclassT], data: dict[str, Any], what: str, *, list_known: bool = False
) -> DataclassT:
    """``cls(**data)``, refusing keys that are no field of the dataclass by name (a typo in a JSON
    override would otherwise be a TypeError, or be silently dropped); ``list_known`` names the fields."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        known = f"; known: {sorted(names)}" if list_known else ""
        raise OrgmemError(f"{what}: unknown field(s) {unknown}{known}")
    return cls(**data)


@dataclass
class ConsolidationConfig:
    """How to write chunks into memory. ``memory`` is used only when there is no parent."""

    memory: Any = field(default="cms", metadata={
        "help": "Memory spec for a fresh memory ('cms', 'lora', 'cms+titans', a config or its dict)."})
    seed: int = field(default=0, metadata={"help": "Seeds shuffling and rehearsal sampling."})
    epochs: float = field(default=4.0, metadata={
        "help": "Passes over tonight's material items (8 drifted and recalled less than 4)."})
    replay_epochs: float = field(default=1.0, metadata={"help": "Expected passes over replay items."})
    tokens_per_step: int = field(default=512, metadata={
        "help": "Material tokens per optimizer step (512 measured better than 768: more steps per token)."})
    max_seq_len: int = field(default=384, metadata={"help": "Longest packed row / text window (tokens)."})
    text_forms: bool = field(default=True, metadata={"help": "Train raw text windows of each chunk."})
    statement_forms: bool = field(default=True, metadata={"help": "Train each derived statement alone."})
    chat_forms: bool = field(default=True, metadata={"help": "Train derived question → statement turns."})
    questions_per_statement: int = field(default=3, metadata={
        "help": "Chat forms per statement: its topic, its salient value (spans.py), the org-named topic."})
    value_answers: bool = field(default=True, metadata={
        "help": "Chat answers for code assignments state the value first ('The dispatch port "
                "(DISPATCH_PORT) is 8843.'); false: they repeat the code line."})
    written_questions: bool = field(default=False, metadata={
        "help": "Also train a question the base model writes for each statement (asked.py). Off: on "
                "the knowledge benchmark it changed which facts were answered, not how many (row L), "
                "and its generation costs about as much as the night's training on a CPU."})
    chat_turns: int = field(default=6, metadata={
        "help": "Q/A turns packed per conversation (amortises the system prompt)."})
    kl_weight: float = field(default=30.0, metadata={"help": "Weight of KL(base‖adapted) on rehearsal."})
    kl_topk: int = field(default=32, metadata={"help": "Base top-k tokens kept for the KL reference."})
    rehearsal_per_step: int = field(default=1, metadata={
        "help": "Rehearsal sequences per step (1 keeps KL <= 0.002 at a third less compute than 2)."})
    lr_scale: float = field(default=1.0, metadata={"help": "Multiplies every memory group's lr."})
    lr_decay: float = field(default=1.0, metadata={
        "help": "Cosine decay of every group's lr within a night, to this fraction at its last step "
                "(1 = constant): late steps refine what early steps wrote instead of overwriting it."})
    grad_clip: float = field(default=1.0, metadata={"help": "Clip each step's gradient norm (0 = off)."})
    warmup_updates: int = field(default=8, metadata={
        "help": "Each group's lr ramps linearly over its first N updates (slow levels: over nights)."})
    curriculum: bool = field(default=False, metadata={
        "help": "Active-recall curriculum (curriculum.py): every fact is drawn with a new question "
                "phrasing and answer form until its answer loss says it is stored; documents (text "
                "windows, statements) ride along for ``doc_epochs`` passes. False: fixed ``epochs`` "
                "passes over fixed forms. Off by default: row N (docs/knowledge_tuning.md) measured "
                "question 13/43 vs 11/43 and cloze 21/43 vs 24/43 for the fixed recipe, at 3.7x the "
                "training tokens: no gain beyond one seed's noise yet."})
    doc_epochs: float = field(default=2.0, metadata={
        "help": "Curriculum only: passes over the night's text windows and statements."})
    fact_share: float = field(default=0.75, metadata={
        "help": "Curriculum only: share of a step's tokens spent on fact drills while documents remain."})
    stored_loss: float = field(default=0.15, metadata={
        "help": "Curriculum only: mean answer-token loss under which a drawn fact counts as recalled."})
    stored_hits: int = field(default=2, metadata={
        "help": "Curriculum only: consecutive recalled draws (each a new phrasing) that make a fact stored."})
    max_exposures: int = field(default=40, metadata={
        "help": "Curriculum only: cap of draws per fact a night."})
    min_exposures: int = field(default=4, metadata={"help": "Curriculum only: draws per fact at least."})
    review_rate: float = field(default=0.1, metadata={
        "help": "Curriculum only: chance per step that a stored fact is drawn again."})
    sparsity_scope: str = field(default="all", metadata={
        "help": "Tokens the memory's gate-sparsity term averages over: 'all' or 'rehearsal' (the gate "
                "is then free to open on material and learns to stay shut off-topic)."})
    context_distill: float = field(default=0.0, metadata={
        "help": "Weight of KL(teacher ‖ memory) on chat answer tokens, the teacher being the frozen base "
                "with the answer's chunk before the question (distill.py); 0 = off. Fixed recipe only: "
                "the curriculum's drills carry no teacher."})
    max_steps: int | None = field(default=None, metadata={"help": "Stop after this many steps."})
    num_threads: int | None = field(default=None, metadata={
        "help": "CPU threads for torch during consolidation (default: os.cpu_count())."})

    def __post_init__(self) -> None:
        if self.epochs <= 0 or self.tokens_per_step <= 0 or self.max_seq_len < 16:
            raise OrgmemError(f"consolidation config: epochs ({self.epochs}) and tokens_per_step "
                              f"({self.tokens_per_step}) must be > 0, max_seq_len >= 16 ({self.max_seq_len})")
        if not 0.0 <= self.lr_decay <= 1.0:
            raise OrgmemError(f"consolidation config: lr_decay must be in [0, 1], got {self.lr_decay}")
        if self.context_distill < 0:
            raise OrgmemError(f"consolidation config: context_distill must be >= 0, "
                              f"got {self.context_distill}")
        if self.sparsity_scope not in ("all", "rehearsal"):
            raise OrgmemError(f"consolidation config: sparsity_scope must be 'all' or 'rehearsal', "
                              f"got {self.sparsity_scope!r}")
        if not (self.text_forms or self.statement_forms or self.chat_forms):
            raise OrgmemError("consolidation config: enable at least one of text/statement/chat forms")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        memory = self.memory
        data["memory"] = memory.to_dict() if hasattr(memory, "to_dict") else memory
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConsolidationConfig:
        return from_known_fields(cls, data, "consolidation config")
