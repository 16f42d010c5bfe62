"""The one Celery app of orgmem, configured from ``get_settings()``.

Two queues: ``ingest`` (connectors, CPU) and ``consolidate`` (memory training, GPU: one task per
worker process, prefetch 1, late acks so a message is only acknowledged once its task ended).
Brokers: ``filesystem://<folder>`` is the embedded default (no server; messages are files,
shared by every process on the machine) and ``redis://`` in production. Job state lives in the
orgmem jobs table, so Celery results are not stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from celery import Celery

from orgmem.config import Settings, get_settings
from orgmem.errors import OrgmemError
from workers.names import CONSOLIDATE_QUEUE, CONSOLIDATE_TASK, INGEST_QUEUE, QUEUES, SYNC_TASK

__all__ = [
    "CONSOLIDATE_QUEUE", "CONSOLIDATE_TASK", "INGEST_QUEUE", "QUEUES", "SYNC_TASK",
    "broker_options", "filesystem_folders", "get_app", "make_app",
]

#: Redis re-delivers an unacknowledged message after this long; consolidations can take hours.
VISIBILITY_TIMEOUT_S = 12 * 3600


def filesystem_folders(broker_url: str, home: Path) -> dict[str, str]:
    """Transport options of the filesystem broker, folders created (kombu requires them to exist)."""
    parts = urlsplit(broker_url)
    root = Path(unquote(parts.netloc + parts.path)) if (parts.netloc or parts.path) else home / "broker"
    if not root.is_absolute():
        raise OrgmemError(f"filesystem broker URL {broker_url!r} must name an absolute folder")
    folders = {
        "data_folder_in": root / "queue",
        "data_folder_out": root / "queue",
        "processed_folder": root / "processed",
        "control_folder": root / "control",
    }
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return {name: str(path) for name, path in folders.items()}


def broker_options(settings: Settings) -> tuple[str, dict[str, Any]]:
    """(broker URL for Celery, transport options) for the configured broker."""
    url = settings.broker_url
    scheme = urlsplit(url).scheme
    if scheme == "filesystem":
        # "localhost" only silences kombu's "no hostname" warning; the folders are what matter.
        return "filesystem://localhost/", {**filesystem_folders(url, settings.home), "polling_interval": 0.2}
    if scheme in ("redis", "rediss"):
        return url, {"visibility_timeout": VISIBILITY_TIMEOUT_S}
    if scheme in ("amqp", "pyamqp", "memory"):
        return url, {}
    raise OrgmemError(
        f"unsupported broker URL {url!r} (ORGMEM_BROKER_URL): use filesystem:///folder or redis://host:port/db"
    )


def make_app(settings: Settings | None = None) -> Celery:
    """A configured app; tests build one per settings, processes use the module-level ``app``."""
    settings = settings or get_settings()
    broker, transport_options = broker_options(settings)
    app = Celery("orgmem", broker=broker, include=["workers.tasks", "workers.recovery"])
    app.conf.update(
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        result_backend=settings.result_backend,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=INGEST_QUEUE,
        task_routes={SYNC_TASK: {"queue": INGEST_QUEUE}, CONSOLIDATE_TASK: {"queue": CONSOLIDATE_QUEUE}},
        task_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,  # tqdm bars go to the worker's stderr as they are, not as log lines
        enable_utc=True,
    )
    return app


_apps: dict[tuple[str, str], Celery] = {}


def get_app() -> Celery:
    """The app for the current settings (one per broker URL, so tests with their own home work)."""
    settings = get_settings()
    key = (settings.broker_url, str(settings.home))
    if key not in _apps:
        _apps[key] = make_app(settings)
    return _apps[key]


def __getattr__(name: str) -> Any:
    """``celery -A workers.app`` reads ``app``; built on first access, not at import."""
    if name == "app":
        return get_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
