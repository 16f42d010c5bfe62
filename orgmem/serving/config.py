"""Settings of the API server (``ORGMEM_SERVE_*``), separate from the core ``Settings``.

The core settings say where state lives; these say how one server process behaves (cache size,
batch size, rate and request limits), so two servers on one database can be tuned apart.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServeSettings(BaseSettings):
    """How one ``orgmem serve`` process behaves."""

    model_config = SettingsConfigDict(env_prefix="ORGMEM_SERVE_", extra="ignore")

    host: str = Field("127.0.0.1", description="Interface to listen on.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0 = any free port).")
    cache_size: int = Field(8, ge=1, description="Org memories kept loaded (LRU, keyed by content hash).")
    max_batch: int = Field(16, ge=1, description="Requests decoded together in one forward pass.")
    prefill_tokens: int = Field(1024, ge=1, description="Prompt tokens prefilled per engine step (padded).")
    max_queue: int = Field(256, ge=1, description="Waiting requests before new ones get 503.")
    max_n: int = Field(8, ge=1, description="Largest n (choices per prompt, decoded side by side; also at "
                       "most max_batch).")
    max_prompts: int = Field(16, ge=1, description="Prompts in one /v1/completions list prompt.")
    default_max_tokens: int = Field(256, ge=1, description="max_tokens when a request gives none.")
    max_tokens_limit: int = Field(4096, ge=1, description="Largest max_tokens a request may ask for.")
    rate_limit_per_minute: float = Field(600.0, ge=0, description="Requests per minute per key; 0 = off.")
    rate_limit_burst: int = Field(60, ge=1, description="Requests a key may make at once before limiting.")
    max_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Largest request body, any route: 413 beyond it, refused "
        "from Content-Length before reading, or as soon as a streamed body passes it.")
    max_prompt_chars: int | None = Field(
        None, ge=1, description="Largest prompt in characters (all messages), refused before tokenising; "
        "default 16 per token of the base's context (131072 for SmolLM2's 8192).")
    max_concurrent_per_key: int = Field(
        4, ge=0, description="Generations one API key may have in flight; 429 beyond; 0 = off.")
    max_generation_seconds: float = Field(
        120.0, ge=0, description="Wall-clock cap per generation from its admission to the batch; the reply "
        "ends there with finish_reason 'length'; 0 = off.")
    trim_after_body_bytes: int = Field(
        1024 * 1024, ge=0, description="After a request with a body this large, give freed heap back to the "
        "OS (glibc malloc_trim); 0 = never.")
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="Base weights when serving: auto = bf16 on GPUs and on CPUs with native bf16, "
        "else fp32 (decoding reads every weight once per token, so half the bytes is faster).")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (default: torch's choice).")
    operator_key: SecretStr | None = Field(
        None, description="Installation-level secret that may create orgs through POST /api/orgs.")
