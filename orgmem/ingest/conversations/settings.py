"""Bounds on recorded conversations, read from ``ORGMEM_CONVERSATION_*`` variables.

Why bounds: a recorded turn becomes training material, so one key must not be able to flood its
org's (or group's) memory, and one huge paste must not become a night's worth of chunks.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConversationSettings(BaseSettings):
    """Size and rate caps of recorded turns (per process; the policy itself is per org, in the database)."""

    model_config = SettingsConfigDict(env_prefix="ORGMEM_CONVERSATION_", extra="ignore")

    max_turn_chars: int = Field(
        8000, ge=200, description="A turn's question + answer longer than this is truncated (question "
        "to at most half, the answer to the rest), and marked truncated.",
    )
    turns_per_key_per_day: int = Field(
        200, ge=1, description="Turns recorded per API key in any 24 hours; further turns are not recorded.",
    )


@lru_cache(maxsize=1)
def get_conversation_settings() -> ConversationSettings:
    """Process-wide settings; tests call ``get_conversation_settings.cache_clear()`` after env changes."""
    return ConversationSettings()
