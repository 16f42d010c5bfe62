"""One settings object for the whole service, read from ``ORGMEM_*`` environment variables.

Every process (CLI, API server, workers, scheduler) builds its configuration here so that the
same variable names work on a laptop, in CI and in ``infra/``.
"""

from __future__ import annotations

import ipaddress
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_BASE_MODEL = "smollm2-135m-instruct"
TINY_BASE_MODEL = "tiny-random"


class Settings(BaseSettings):
    """Effective configuration; unset URLs are derived from ``home`` (embedded defaults)."""

    model_config = SettingsConfigDict(env_prefix="ORGMEM_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".orgmem",
                       description="Root folder for embedded state: SQLite file, local store, models.")
    database_url: str = Field("", description="SQLAlchemy URL; default sqlite:///<home>/orgmem.db")
    store_url: str = Field("", description="file:///path or s3://bucket/prefix; default file://<home>/store")
    s3_endpoint_url: str | None = Field(None, description="Endpoint of any S3-compatible server.")
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    broker_url: str = Field("", description="Celery broker; default filesystem:// under home (no server).")
    result_backend: str = ""
    models_dir: Path | None = Field(None, description="Converted base models; default <home>/models.")
    base_model: str = Field(DEFAULT_BASE_MODEL,
                            description="'smollm2-135m-instruct', 'tiny-random' or a local HF Llama folder.")
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    consolidate_procs: int = Field(
        1,
        ge=1,
        description="Processes one org's nightly consolidation trains on, data parallel (gloo on CPU, NCCL "
        "with one GPU per process, cuda:0..N-1); 1 = in the worker process. Equal to 1 up to rounding "
        "(docs/deploy.md); the curriculum and context distillation need 1.",
    )
    forget_grace_hours: float = Field(
        0.0, ge=0, description="Hours a forgotten checkpoint's objects are kept; 0 = delete at once."
    )
    log_level: str = "INFO"
    log_json: bool = False
    source_roots: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Folders local sources may live under (comma-separated or JSON list); '{org}' in an "
        "entry is the org's slug. Empty: the API accepts no local paths, the CLI any path.",
    )
    allowed_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="CIDRs that source URLs may reach although internal (loopback, private, link-local), "
        "e.g. '10.1.0.0/16'; comma-separated or JSON list.",
    )

    @field_validator("source_roots", "allowed_networks", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        """``a,b`` or ``["a", "b"]`` from the environment; lists pass through."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as exc:
                raise ValueError(f"ORGMEM_ALLOWED_NETWORKS entry {entry!r} is not a network: {exc}") from None
        return value

    @property
    def models_root(self) -> Path:
        """``models_dir`` as derived at load (``<home>/models`` when unset): never None."""
        return self.models_dir if self.models_dir is not None else (self.home / "models").expanduser()

    @model_validator(mode="after")
    def _derive_defaults(self) -> Settings:
        self.home = self.home.expanduser()
        self.models_dir = (self.models_dir or self.home / "models").expanduser()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.home / 'orgmem.db'}"
        if not self.store_url:
            self.store_url = f"file://{self.home / 'store'}"
        if not self.broker_url:
            self.broker_url = f"filesystem://{self.home / 'broker'}"
        if not self.result_backend:
            self.result_backend = "cache+memory://"
        return self

    def masked(self) -> dict[str, str]:
        """Settings as printable strings with passwords and keys hidden."""
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                text = "********" if value.get_secret_value() else ""
            elif value is None:
                text = ""
            else:
                text = mask_url_password(str(value))
            out[name] = text
        return out


_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*://)(?P<user>[^:/@]+):(?P<pw>[^@/]+)@")


def mask_url_password(url: str) -> str:
    """Hide the password part of ``scheme://user:password@host`` URLs."""
    return _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:********@", url)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings; tests call ``get_settings.cache_clear()`` after changing the env."""
    return Settings()
