"""The generated world as data: facts with their value history, and the documents that state them.

Everything is kept with the night it happened, so any night can be rendered after the whole
history has been simulated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks.orggen.catalog import Attr, Entity, Value


@dataclass
class Fact:
    id: str
    entity: Entity
    attr: Attr
    source: str  # code / docs / slack / news
    where: str  # the probe's source: path, channel/day or feed item
    form: str  # "code" or "prose": which written form of the value the document uses
    frame: str  # frame key (for variety statistics)
    line: str  # the line as written, with {V} where the value goes
    cloze: str  # visible text of the line before the value
    question: str
    created: int
    history: list[tuple[int, Value]] = field(default_factory=list)
    retired: int | None = None

    def value_at(self, night: int) -> Value:
        current = self.history[0][1]
        for when, value in self.history:
            if when <= night:
                current = value
        return current

    def written_at(self, night: int) -> str:
        return self.value_at(night).written(self.form)[0]


@dataclass
class Block:
    """One fact's place in a document: lines before it, its line, lines after it."""

    fact: Fact
    group: str  # where in the document it renders (prose, list, table, dl, main, ...)
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)


@dataclass
class Doc:
    path: str  # relative to the output folder: repo/... or docs/...
    source: str
    fmt: str
    entity: Entity
    title: str
    style: str
    created: int
    intro: list[str] = field(default_factory=list)
    outro: list[str] = field(default_factory=list)
    headings: dict[str, str] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)
    deleted: int | None = None

    def live(self, night: int) -> bool:
        return self.created <= night and (self.deleted is None or night < self.deleted)


@dataclass
class Message:
    ts: str
    channel: str
    user: str
    text: str  # with {V} when it states a fact
    night: int
    fact: Fact | None = None
    thread_ts: str | None = None
    reply_count: int = 0
    subtype: str | None = None
    deleted: int | None = None
    deleted_form: str = "event"  # "event": a message_deleted record; "vanish": gone from the export
    deleted_ts: str = ""
    edit_form: str = "event"  # "event": message_changed records; "inplace": final text + "edited"
    edits: list[tuple[int, str]] = field(default_factory=list)  # (night, ts of the edit)
    extra: dict = field(default_factory=dict)


@dataclass
class NewsItem:
    guid: str
    link: str
    title: str
    body: str  # with {V} when it states a fact
    night: int
    minute: int
    fact: Fact | None = None
