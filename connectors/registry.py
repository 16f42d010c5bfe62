"""Which connector reads which source kind: a table of names, each imported on first use.

Onyx-style: the table maps a kind to ``"module:Class"`` strings, not to classes, so nothing here
imports a connector until a source of that kind is used (the CLI stays light, and ``connectors.base``
never depends on the connectors built on it). A new connector is its module plus one line below.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from pydantic import ValidationError

from connectors.base import Connector, SourceConfig, SourceConfigError

#: kind -> "module:Class" of its connector (a subclass of ``connectors.base.Connector``)
CONNECTORS: dict[str, str] = {
    "docs": "connectors.docs:DocsConnector",
    "git": "connectors.git:GitConnector",
    "rss": "connectors.rss:RssConnector",
    "slack": "connectors.slack:SlackConnector",
}


def kinds() -> list[str]:
    """Known kinds, sorted."""
    return sorted(CONNECTORS)


@cache
def connector_class(kind: str) -> type[Connector]:
    """The connector class of ``kind``, imported now; unknown kinds name the known ones."""
    try:
        target = CONNECTORS[kind]
    except KeyError:
        raise SourceConfigError(f"unknown source kind {kind!r}; known kinds: {', '.join(kinds())}") from None
    module_name, _, class_name = target.partition(":")
    # The plugin loader: connectors are named in CONNECTORS, not imported, so each is loaded here on
    # first use (and a broken or slow connector costs nothing to a process that never reads that kind).
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Connector)) or cls.kind != kind:
        raise TypeError(f"{target} is not the Connector of kind {kind!r}")
    return cls


def get_connector(kind: str) -> Connector:
    """A fresh connector instance for ``kind`` (connectors keep per-sync state)."""
    return connector_class(kind)()


def config_class(kind: str) -> type[SourceConfig]:
    """The pydantic model a ``kind`` source's config must satisfy."""
    return connector_class(kind).config_cls


def parse_config(kind: str, raw: dict[str, Any] | None) -> SourceConfig:
    """Validate a raw config for ``kind``; the error names each bad field and why (and, for an
    unknown field, the fields the kind has)."""
    model = config_class(kind)
    try:
        return model.model_validate(raw or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"field '{'.'.join(str(p) for p in err['loc']) or '(config)'}': {err['msg']}"
            for err in exc.errors()
        )
        if any(err["type"] == "extra_forbidden" for err in exc.errors()):
            problems += f" (fields of {kind}: {', '.join(model.model_fields)})"
        raise SourceConfigError(f"invalid {kind} source config: {problems}") from None
