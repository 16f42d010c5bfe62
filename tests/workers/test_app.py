"""The Celery app's configuration: queues, late acks, one task at a time, brokers by URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from orgmem.config import Settings
from orgmem.errors import OrgmemError
from workers.app import CONSOLIDATE_TASK, SYNC_TASK, VISIBILITY_TIMEOUT_S, make_app


def test_embedded_filesystem_broker_folders_are_created(tmp_path):
    app = make_app(Settings(home=tmp_path, broker_url=f"filesystem://{tmp_path}/q"))
    opts = app.conf.broker_transport_options
    assert opts["data_folder_in"] == opts["data_folder_out"] == str(tmp_path / "q" / "queue")
    assert all(Path(opts[k]).is_dir() for k in ("data_folder_in", "processed_folder", "control_folder"))
    assert app.conf.task_routes[SYNC_TASK] == {"queue": "ingest"}
    assert app.conf.task_routes[CONSOLIDATE_TASK] == {"queue": "consolidate"}
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1 and app.conf.task_ignore_result


def test_redis_broker_has_a_long_visibility_timeout(tmp_path):
    app = make_app(Settings(home=tmp_path, broker_url="redis://127.0.0.1:6379/3"))
    assert app.conf.broker_url == "redis://127.0.0.1:6379/3"
    assert app.conf.broker_transport_options == {"visibility_timeout": VISIBILITY_TIMEOUT_S}


@pytest.mark.parametrize("url", ["kafka://x", "filesystem://relative/path"])
def test_unsupported_broker_urls_are_named(tmp_path, url):
    with pytest.raises(OrgmemError, match="broker URL"):
        make_app(Settings(home=tmp_path, broker_url=url))
