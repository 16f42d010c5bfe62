"""The limits of learning from use, read from ``ORGMEM_FEEDBACK_*`` variables.

Separate from ``orgmem.config`` because only feedback reads them; tests shrink them (a rate limit
of 3 corrections an hour) to hit the limits quickly.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class FeedbackSettings(BaseSettings):
    """Response retention, the per-key correction rate, and how strongly a correction trains."""

    model_config = SettingsConfigDict(env_prefix="ORGMEM_FEEDBACK_", extra="ignore")

    response_ttl_hours: float = Field(
        72.0, gt=0, description="Hours a reply is kept for feedback; older ones are deleted on write.")
    max_responses_per_org: int = Field(
        10_000, ge=1, description="Reply records kept per org; the oldest beyond are deleted on write.")
    corrections_per_hour: int = Field(
        20, ge=0, description="Corrections one key may propose per hour (0 = none at all).")
    max_correction_chars: int = Field(2000, ge=1, description="Longest proposed answer accepted.")
    repeats: int = Field(
        16, ge=1, description="Copies of each approved correction's items per training pass (priority "
        "over the older statements of the same fact, which appear once). SmolLM2-135M, 6 corrections "
        "(benchmarks/feedback.py): 8 gave 2/6 answered with the corrected value, 16 gave 6/6.")
    unlikelihood_weight: float = Field(
        1.0, ge=0, description="Weight of the term that pushes the model's previous answer down (0 = off).")
    replay: bool = Field(
        True, description="Later consolidations replay consumed corrections once each, so replayed "
        "documents with the old value do not bring it back.")


@lru_cache(maxsize=1)
def get_feedback_settings() -> FeedbackSettings:
    """Process-wide feedback settings; tests call ``get_feedback_settings.cache_clear()``."""
    return FeedbackSettings()
