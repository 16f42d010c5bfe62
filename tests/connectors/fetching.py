"""What every connector test does around ``fetch``: run it to the end, keep what it yields and the
cursor to store (``retry_cursor`` with the items not stored), and allow the loopback fake servers."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import pytest

from connectors.base import Connector, Cursor, DocumentVersion, FetchItem, Pull
from connectors.registry import get_connector, parse_config
from orgmem.config import get_settings


def run_fetch(
    kind: str, config: dict[str, Any], cursor: Cursor | None = None, unstored: Collection[str] = ()
) -> tuple[Connector, list[FetchItem], Cursor | None]:
    """The connector, the items one sync yields, and the cursor it would keep with ``unstored`` missing."""
    connector = get_connector(kind)
    pull = Pull(connector.fetch(parse_config(kind, config), cursor))
    items = list(pull)  # the generator returns the next cursor
    return connector, items, connector.retry_cursor(cursor, pull.result, unstored)


def fetcher(kind: str) -> Callable[..., tuple[list[FetchItem], Cursor | None]]:
    """``fetch(config, cursor=None, unstored=())`` for one kind: the items and the cursor to keep."""

    def fetch(
        config: dict[str, Any], cursor: Cursor | None = None, unstored: Collection[str] = ()
    ) -> tuple[list[FetchItem], Cursor | None]:
        _, items, next_cursor = run_fetch(kind, config, cursor, unstored)
        return items, next_cursor

    return fetch


def versions(items: list[FetchItem]) -> dict[str, DocumentVersion]:
    """The document versions among ``items`` (not the failures), by external id."""
    return {i.external_id: i for i in items if isinstance(i, DocumentVersion)}


def allow_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake servers listen on 127.0.0.1, an internal address: the operator allows it explicitly."""
    monkeypatch.setenv("ORGMEM_ALLOWED_NETWORKS", "127.0.0.0/8")
    get_settings.cache_clear()
