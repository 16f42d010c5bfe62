"""What a source may reach, as the operator configured it: local roots, orgmem's own files, networks.

One frozen object built from the settings for an org and a caller. Sources added through the API
(an org admin) are always confined to the roots; the CLI is the operator, who runs it on the host:
with no roots configured it may name any path. Nobody may name orgmem's own home, store or
database, whatever the roots say. See docs/security.md, "Source confinement".
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from orgmem.config import Settings, get_settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ORG_PLACEHOLDER = "{org}"


@dataclass(frozen=True)
class SourcePolicy:
    """The confinement of one org's sources for one caller (``operator`` = the CLI on the host)."""

    org: str | None
    operator: bool
    roots: tuple[Path, ...] = ()  # resolved; a path must lie under one of them (when not unconfined)
    denied: tuple[tuple[Path, str], ...] = ()  # (resolved path, what it is): never reachable
    networks: tuple[Network, ...] = ()  # internal networks the operator allows URLs to reach
    roots_setting: str = field(default="", compare=False)  # ORGMEM_SOURCE_ROOTS as set, for messages

    @property
    def unconfined(self) -> bool:
        """The operator with no roots configured: any path except orgmem's own files."""
        return self.operator and not self.roots

    @classmethod
    def for_org(cls, org: str | None, *, operator: bool, settings: Settings | None = None) -> SourcePolicy:
        settings = settings or get_settings()
        return cls(
            org=org,
            operator=operator,
            roots=tuple(_expand_roots(settings.source_roots, org)),
            denied=tuple(own_files(settings)),
            networks=tuple(parse_networks(settings.allowed_networks)),
            roots_setting=",".join(settings.source_roots),
        )


def _expand_roots(entries: list[str], org: str | None) -> list[Path]:
    """Roots for ``org``: ``{org}`` replaced by its slug (such entries are skipped when org is unknown)."""
    roots = []
    for entry in entries:
        if ORG_PLACEHOLDER in entry:
            if not org:
                continue
            entry = entry.replace(ORG_PLACEHOLDER, org)
        roots.append(Path(entry).expanduser().resolve())
    return roots


def _file_url_path(url: str) -> Path | None:
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


def own_files(settings: Settings) -> list[tuple[Path, str]]:
    """orgmem's own state, which no source may read: home, local store, SQLite database, broker folder."""
    out = [(settings.home.resolve(), f"orgmem's own home (ORGMEM_HOME={settings.home})")]
    store = _file_url_path(settings.store_url)
    if store is not None:
        out.append((store.resolve(), f"orgmem's file store (ORGMEM_STORE_URL={settings.store_url})"))
    if settings.database_url.startswith("sqlite:///"):
        db = Path(settings.database_url.removeprefix("sqlite:///").split("?", 1)[0])
        out.append((db.resolve(), "orgmem's database (ORGMEM_DATABASE_URL)"))
    if settings.broker_url.startswith("filesystem://"):
        broker = Path(settings.broker_url.removeprefix("filesystem://"))
        out.append((broker.resolve(), f"orgmem's broker folder (ORGMEM_BROKER_URL={settings.broker_url})"))
    return out


def parse_networks(entries: list[str]) -> list[Network]:
    """``ORGMEM_ALLOWED_NETWORKS`` entries as networks; a bad entry is a ValueError naming it."""
    out = []
    for entry in entries:
        try:
            out.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(f"ORGMEM_ALLOWED_NETWORKS entry {entry!r} is not a network: {exc}") from None
    return out
