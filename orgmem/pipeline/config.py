"""Knobs of the nightly consolidation pipeline (around the engine) and where they come from.

Precedence, lowest first: shipped defaults → ``ORGMEM_PIPELINE_*`` environment (a deployment's
setting, e.g. a smaller engine budget on CPU) → the job's ``params`` (``orgmem consolidate
--engine '{...}'``). Everything resolved is recorded in the checkpoint manifest, and the engine
config is part of the idempotency digest: the same inputs with another recipe are another run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from orgmem.engine.config import from_known_fields
from orgmem.errors import OrgmemError

REPLAY_POLICIES = ("none", "sample", "full", "budget")  # what each does: pipeline/replay.py


@dataclass(frozen=True)
class PipelineConfig:
    """What the pipeline feeds the engine and how it evaluates the result."""

    replay_policy: str = field(
        default="sample",
        metadata={
            "help": "Which older chunks a night replays: none | sample | full | budget (pipeline/replay.py)."
        },
    )
    replay_max_chunks: int = field(
        default=32, metadata={"help": "Replay budget: older chunks replayed per night (sample, budget)."}
    )
    replay_pool: int = field(
        default=8,
        metadata={
            "help": "budget: candidates scored for forgetting per replay slot (forward passes, no training)."
        },
    )
    new_probes: int = field(default=16, metadata={"help": "Auto-probes cut from tonight's chunks."})
    old_probes: int = field(default=16, metadata={"help": "Auto-probes cut from earlier nights' chunks."})
    probe_seed: int = field(default=0, metadata={"help": "Seed of probe and replay sampling."})
    drift_eval: bool = field(default=True, metadata={"help": "Measure KL and perplexity against the base."})
    generic_replies: bool = field(
        default=False,
        metadata={"help": "Also generate generic replies: replies changed, leakage (slow on CPU)."},
    )
    cloze_max_new_tokens: int = field(default=16, metadata={"help": "Greedy tokens per probe completion."})
    bait_max_new_tokens: int = field(default=32, metadata={"help": "Greedy tokens per secret-bait prompt."})
    progress: bool = field(default=True, metadata={"help": "Show tqdm bars (engine steps) on stderr."})

    def __post_init__(self) -> None:
        for name in ("replay_max_chunks", "replay_pool", "new_probes", "old_probes", "cloze_max_new_tokens"):
            if getattr(self, name) < 0:
                raise OrgmemError(f"pipeline config {name} must be >= 0, got {getattr(self, name)}")
        if self.replay_policy not in REPLAY_POLICIES:
            raise OrgmemError(
                f"pipeline config replay_policy must be one of {list(REPLAY_POLICIES)}, "
                f"got {self.replay_policy!r}"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineConfig:
        return from_known_fields(cls, data, "pipeline config", list_known=True)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class PipelineSettings(BaseSettings):
    """Deployment-wide overrides: ``ORGMEM_PIPELINE_ENGINE='{"epochs": 2}'`` (JSON objects)."""

    model_config = SettingsConfigDict(env_prefix="ORGMEM_PIPELINE_", extra="ignore")

    engine: dict[str, Any] = Field(default_factory=dict, description="ConsolidationConfig overrides.")
    options: dict[str, Any] = Field(default_factory=dict, description="PipelineConfig overrides.")


@dataclass(frozen=True)
class ResolvedConfig:
    pipeline: PipelineConfig
    engine: Any  # orgmem.engine.config.ConsolidationConfig (imported lazily: it pulls in torch)


def resolve(params: dict[str, Any] | None = None) -> ResolvedConfig:
    """Defaults ← environment ← job params (``{"engine": {...}, "pipeline": {...}}``)."""
    from orgmem.engine.config import ConsolidationConfig

    params = params or {}
    env = PipelineSettings()
    for key in ("engine", "pipeline"):
        if not isinstance(params.get(key, {}), dict):
            raise OrgmemError(f"job parameter {key!r} must be a JSON object, got {params[key]!r}")
    engine = ConsolidationConfig.from_dict({**env.engine, **params.get("engine", {})})
    pipeline = PipelineConfig.from_dict({**env.options, **params.get("pipeline", {})})
    return ResolvedConfig(pipeline, engine)
