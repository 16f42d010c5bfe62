"""Timing knobs of background jobs, read from ``ORGMEM_*`` variables like every other setting.

They live here rather than in ``orgmem.config`` because only the job machinery reads them; tests
shrink them (a 3-second lease) to exercise expiry and recovery quickly.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class JobSettings(BaseSettings):
    """Lease, heartbeat, retry and recovery timing of queued jobs."""

    model_config = SettingsConfigDict(env_prefix="ORGMEM_", extra="ignore")

    lease_seconds: float = Field(600.0, gt=0, description="A job's lease lasts this long unless renewed.")
    heartbeat_seconds: float = Field(0.0, ge=0, description="Renewal interval; 0 = a third of the lease.")
    max_attempts: int = Field(3, ge=1, description="Attempts before a job is failed for good.")
    retry_backoff_seconds: float = Field(30.0, ge=0, description="First retry delay; doubles each attempt.")
    recover_interval_seconds: float = Field(60.0, gt=0, description="How often stale jobs are looked for.")
    lease_wait_seconds: float = Field(
        30.0, ge=0, description="Delay before re-trying a job whose org is busy."
    )

    @model_validator(mode="after")
    def _derive(self) -> JobSettings:
        if not self.heartbeat_seconds:
            self.heartbeat_seconds = self.lease_seconds / 3
        if self.heartbeat_seconds >= self.lease_seconds:
            raise ValueError(
                f"ORGMEM_HEARTBEAT_SECONDS ({self.heartbeat_seconds}) must be shorter than "
                f"ORGMEM_LEASE_SECONDS ({self.lease_seconds}) or leases expire while renewed"
            )
        return self


@lru_cache(maxsize=1)
def get_job_settings() -> JobSettings:
    """Process-wide job settings; tests call ``get_job_settings.cache_clear()`` after env changes."""
    return JobSettings()
