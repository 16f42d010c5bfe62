"""The one registry of memory kinds (peft style): a name maps to all of a kind's forms.

An entry names the config class, the training form (the kind class that ``attach`` hooks into a
base) and the serving form (``rows``: the builder of its row operations, see ``orgmem.memory.rows``;
None for a kind that cannot be served yet). Kinds register themselves on import with
``register_memory_kind``; a name that is not registered yet is looked up as the module
``orgmem.memory.<name>`` (so ``titans`` registers itself from its own package). Combinations are
written ``"cms+titans"``: one component per name, in that order.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orgmem.errors import NotFoundError, OrgmemError
from orgmem.memory.config import MemoryConfig
from orgmem.memory.interface import MemoryKind

if TYPE_CHECKING:
    from orgmem.memory.rows import RowBuilder


@dataclass(frozen=True)
class KindEntry:
    name: str
    config_cls: type[MemoryConfig]
    kind_cls: type[MemoryKind]
    rows: RowBuilder | None = None


_KINDS: dict[str, KindEntry] = {}


def register_memory_kind(name: str, config_cls: type[MemoryConfig], kind_cls: type[MemoryKind],
                         rows: RowBuilder | None = None) -> None:
    """Add a kind with its forms; a second registration of the same name is refused (no silent override)."""
    if not name or "+" in name:
        raise ValueError(f"invalid memory kind name {name!r}")
    if name in _KINDS:
        raise ValueError(f"memory kind {name!r} is already registered ({_KINDS[name].kind_cls.__name__})")
    if config_cls.kind != name:
        raise ValueError(f"{config_cls.__name__}.kind is {config_cls.kind!r}, expected {name!r}")
    _KINDS[name] = KindEntry(name, config_cls, kind_cls, rows)
    kind_cls.config_cls = config_cls


def registered_kinds() -> list[str]:
    return sorted(_KINDS)


def servable_kinds() -> list[str]:
    """The kinds with a serving form, built-in packages included (each is imported to ask)."""
    discover_kinds()
    return sorted(name for name, entry in _KINDS.items() if entry.rows is not None)


def discover_kinds() -> list[str]:
    """Import every ``orgmem.memory.<pkg>`` package (each registers its kind); return all names."""
    import pkgutil

    import orgmem.memory

    for info in pkgutil.iter_modules(orgmem.memory.__path__):
        if info.ispkg:
            # The plugin loader: each kind package registers itself when imported.
            importlib.import_module(f"orgmem.memory.{info.name}")
    return registered_kinds()


def get_kind(name: str) -> KindEntry:
    """Entry for ``name``, importing ``orgmem.memory.<name>`` on first use if needed."""
    if name not in _KINDS and name.isidentifier():
        module = f"orgmem.memory.{name}"
        if importlib.util.find_spec(module) is not None:
            # The plugin loader: a kind named before its package was imported registers on import.
            importlib.import_module(module)
    if name not in _KINDS:
        raise NotFoundError(f"unknown memory kind {name!r}; known kinds: {registered_kinds()}")
    return _KINDS[name]


Spec = str | MemoryConfig | list | dict


def parse_spec(spec: Spec) -> list[MemoryConfig]:
    """Component configs from ``"cms"``, ``"cms+titans"``, a config, a list of those, or the dict
    that ``MemoryHandle.config`` returns (``{"kind": "cms+titans", "components": [...]}``)."""
    if isinstance(spec, MemoryConfig):
        configs = [spec]
    elif isinstance(spec, str):
        names = [n.strip() for n in spec.split("+")]
        if not all(names):
            raise OrgmemError(f"invalid memory spec {spec!r}: expected names joined by '+'")
        configs = [get_kind(n).config_cls() for n in names]
    elif isinstance(spec, dict):
        configs = [_config_from_dict(c) for c in spec.get("components", [spec])]
    elif isinstance(spec, list):
        configs = [c if isinstance(c, MemoryConfig) else _config_from_dict(c) for c in spec]
    else:
        raise OrgmemError(f"invalid memory spec of type {type(spec).__name__}")
    kinds = [c.kind for c in configs]
    if len(set(kinds)) != len(kinds) or not kinds:
        raise OrgmemError(f"memory spec {kinds} must name each kind at most once and at least one kind")
    return configs


def _config_from_dict(data: dict[str, Any]) -> MemoryConfig:
    if "kind" not in data:
        raise OrgmemError(f"memory config {data} has no 'kind'")
    return get_kind(str(data["kind"])).config_cls.from_dict(data)
