"""The connector protocol: one small class per source kind (``connectors.registry`` names them).

Onyx-style: a connector's ``fetch`` takes its source config and the last cursor, yields document
versions (or per-document failures) and *returns* the next cursor, the generator's return value
(``Pull`` reads it). The ingest framework owns storage; a connector never touches the database, so
each one can be tested alone.

Why a second step for what was not stored: the framework may fail to store a version (governance
crash, DB error). The cursor must not advance past it, so ``retry_cursor`` narrows the returned
cursor to keep those items for the next run.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections import Counter
from collections.abc import Collection, Generator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orgmem.errors import OrgmemError

if TYPE_CHECKING:
    from connectors.policy import SourcePolicy


class SourceConfigError(OrgmemError):
    """A source config that does not validate; the message names the kind and the field."""

    exit_code = 6


class SourceError(OrgmemError):
    """The whole source cannot be read (missing repo, corrupt zip, 404 feed): nothing is stored."""

    exit_code = 7


def text_hash(text: str) -> str:
    """Content hash used for change detection across every kind (sha256 of the UTF-8 text)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class DocumentVersion:
    """One state of one document as the source has it now; ``deleted`` marks a tombstone."""

    external_id: str
    uri: str
    text: str
    content_hash: str
    title: str = ""
    author: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    audience: str | None = None  # None: inherit the source's audience
    metadata: dict[str, Any] = field(default_factory=dict)
    deleted: bool = False

    @classmethod
    def tombstone(cls, external_id: str, uri: str, title: str = "") -> DocumentVersion:
        """A deletion marker: no text, the hash of the empty string."""
        return cls(
            external_id=external_id, uri=uri, text="", content_hash=text_hash(""), title=title, deleted=True
        )


@dataclass(frozen=True)
class DocumentFailure:
    """One item the connector could not read; the rest of the sync goes on."""

    item: str
    error: str
    external_id: str | None = None


FetchItem = DocumentVersion | DocumentFailure
Cursor = dict[str, Any]  # JSON, stored on the source between syncs
#: what ``Connector.fetch`` is: items yielded, the next cursor returned
Fetch = Generator[FetchItem, None, Cursor]

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


class Pull(Generic[ItemT, ResultT]):
    """Iterate a generator and keep what it returns: ``for item in pull: ...`` then ``pull.result``.

    A plain ``for`` loop drops the return value (it rides on ``StopIteration``); ``yield from``
    hands it over, so wrapping the generator in one is all this does.
    """

    def __init__(self, generator: Generator[ItemT, None, ResultT]) -> None:
        self._generator = generator
        self._result: ResultT | None = None
        self.done = False

    def __iter__(self) -> Iterator[ItemT]:
        self._result = yield from self._generator
        self.done = True

    @property
    def result(self) -> ResultT:
        """The return value; asking before the generator is exhausted is a bug."""
        if not self.done:
            raise RuntimeError("the generator has not finished: its return value is not there yet")
        return self._result  # type: ignore[return-value]  # set by the finished ``yield from``


def cli_hints(*aliases: str, metavar: str | None = None, local_path: bool = False) -> dict[str, Any]:
    """A config field's ``json_schema_extra`` for ``orgmem source add``, which makes each field an option
    (``--max-file-bytes`` from ``max_file_bytes``, its help from the field's description).

    ``aliases``: other spellings of the option (kept when a flag was named before its field);
    ``metavar``: what the value looks like in the help; ``local_path``: a path on this host, made
    absolute at add time because the worker reads it from another directory.
    """
    return {"cli": {"aliases": list(aliases), "metavar": metavar, "local_path": local_path}}


class SourceConfig(BaseModel):
    """Base of every per-kind config: unknown fields are rejected so typos are caught early.

    Each field's ``description`` is the help of its ``orgmem source add`` option: say what it does.
    """

    model_config = ConfigDict(extra="forbid")

    redact_pii: list[Literal["email", "phone"]] = Field(
        [], description="Redact this kind of PII before training: email | phone (repeat it)."
    )
    forget_on_delete: bool = Field(
        False, description="Forget items deleted at the source (out of the weights too)."
    )
    # restricted folders: glob over the item's id (a path for git/docs) -> the group that may see it;
    # such items go to that group's memory, never to the org memory (first matching glob wins)
    restricted: dict[str, str] = Field(
        {},
        description="Matching paths train GROUP's memory, not the org's (repeat it; the first match wins).",
        json_schema_extra=cli_hints("--restrict", metavar="GLOB=GROUP"),
    )

    @field_validator("restricted")
    @classmethod
    def _groups_only(cls, value: dict[str, str]) -> dict[str, str]:
        for pattern, group in value.items():
            if not pattern.strip() or not group.strip() or group == "org":
                raise ValueError(f"restricted {pattern!r} -> {group!r}: give a path glob and a group name "
                                 "other than 'org'")
        return value


ConfigT = TypeVar("ConfigT", bound=SourceConfig)


def config_as(config: SourceConfig, kind: type[ConfigT]) -> ConfigT:
    """``config`` as the connector's own config class: an explicit check, not an ``assert`` (which
    ``python -O`` strips; bandit B101)."""
    if not isinstance(config, kind):
        raise TypeError(f"{kind.__name__} expected, got {type(config).__name__}")
    return config


def restricted_audience(config: dict, external_id: str) -> str | None:
    """The group of the first ``restricted`` glob matching ``external_id`` (``*`` crosses folders)."""
    for pattern, group in (config.get("restricted") or {}).items():
        if fnmatch.fnmatchcase(external_id, pattern):
            return group
    return None


class Connector:
    """Base class of a connector. Subclasses set ``kind`` and ``config_cls`` and implement fetch.

    After ``fetch`` has been fully iterated (its return value is the next cursor), ``skipped``
    counts deliberate skips by reason and ``live_ids`` (when not None) is the complete set of ids
    the source holds now, so the framework can tombstone stored documents that vanished (used
    after full listings).
    """

    kind: ClassVar[str] = ""
    config_cls: ClassVar[type[SourceConfig]] = SourceConfig

    def __init__(self) -> None:
        self.skipped: Counter[str] = Counter()
        self.live_ids: set[str] | None = None
        self.org: str | None = None  # the org whose source this is (its roots when '{org}' is used)
        self.policy: SourcePolicy | None = None  # None: the operator's policy for ``org``

    @property
    def confinement(self) -> SourcePolicy:
        """What this source may reach: the given policy, else the operator's (CLI, workers)."""
        from connectors.policy import SourcePolicy

        return self.policy or SourcePolicy.for_org(self.org, operator=True)

    def check(self, config: SourceConfig) -> None:
        """Add-time check (and ``source test``): raise the SourceError a sync would raise, read nothing."""

    def fetch(self, config: SourceConfig, cursor: Cursor | None) -> Fetch:
        """Yield what changed since ``cursor``; return the next cursor (all yielded items stored)."""
        raise NotImplementedError

    def retry_cursor(
        self, previous: Cursor | None, cursor: Cursor, unstored: Collection[str]
    ) -> Cursor | None:
        """The cursor to keep when the ``unstored`` external ids were yielded but not stored.

        ``previous`` is the cursor ``fetch`` was given, ``cursor`` the one it returned. This default
        keeps ``previous`` whenever anything is missing (everything is read again); connectors narrow
        it to read only the missing items again.
        """
        return previous if unstored else cursor
