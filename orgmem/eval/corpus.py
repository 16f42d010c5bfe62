"""A nightly corpus on disk: what an org delivered each night, and the probes that measure it.

Layout (``benchmarks/corpus/`` is one)::

    <root>/night1/<path>      documents delivered on night 1 (repo/..., docs/..., slack/..., news/...)
    <root>/night2/<path>      new documents, or new versions of a night-1 path (they supersede it)
    <root>/probes.jsonl       measuring only: never given to the engine

A night-2 file at the same path as a night-1 file is the edited document, as a connector would
deliver it; the old version's chunks stop being replayed. ``check()`` proves the probes agree
with the documents (each answer is really written after its cloze; an update's old value is gone).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orgmem.errors import NotFoundError
from orgmem.eval.probes import Probe, join_cloze, load_probes

NIGHT_DIR = re.compile(r"^night(\d+)$")
SOURCE_KINDS = {"repo": "git", "docs": "docs", "slack": "slack", "news": "rss"}


@dataclass(frozen=True)
class CorpusDoc:
    path: str  # relative to the night folder, e.g. "docs/onboarding.md"
    night: int
    text: str

    @property
    def source_kind(self) -> str:
        """Connector kind that would have delivered it, from the top folder (repo → git, ...)."""
        return SOURCE_KINDS.get(self.path.split("/", 1)[0], "docs")

    @property
    def source_name(self) -> str:
        return self.path.split("/", 1)[0]


@dataclass
class NightlyCorpus:
    root: Path
    docs: list[CorpusDoc]
    probes: list[Probe]

    @property
    def nights(self) -> list[int]:
        return sorted({d.night for d in self.docs})

    def delivered(self, night: int) -> list[CorpusDoc]:
        """Documents new or changed on ``night`` (what the engine consolidates that night)."""
        return [d for d in self.docs if d.night == night]

    def current(self, night: int) -> dict[str, CorpusDoc]:
        """Each path's latest version at or before ``night``."""
        latest: dict[str, CorpusDoc] = {}
        for doc in sorted(self.docs, key=lambda d: d.night):
            if doc.night <= night:
                latest[doc.path] = doc
        return latest

    def replay(self, night: int) -> list[CorpusDoc]:
        """Earlier documents still true on ``night``: not re-delivered (superseded) that night."""
        changed = {d.path for d in self.delivered(night)}
        return [d for path, d in sorted(self.current(night - 1).items()) if path not in changed]

    def check(self) -> list[str]:
        """Disagreements between probes and documents (empty = consistent)."""
        problems = []
        for p in self.probes:
            doc = self.current(p.night).get(p.source)
            if doc is None:
                problems.append(f"{p.key}: source {p.source!r} has no document by night {p.night}")
                continue
            if join_cloze(p.cloze, p.answer) not in doc.text:
                problems.append(f"{p.key}: {join_cloze(p.cloze, p.answer)!r} not written in {p.source}")
            for old in p.replaces:
                if join_cloze(p.cloze, old) in doc.text:
                    problems.append(f"{p.key}: replaced value {old!r} still in {p.source} on night {p.night}")
        return problems


def load_corpus(root: str | Path) -> NightlyCorpus:
    """Read ``<root>/night*/**`` and ``<root>/probes.jsonl``."""
    root = Path(root)
    nights = {int(m.group(1)): d for d in sorted(root.glob("night*")) if (m := NIGHT_DIR.match(d.name))}
    if not nights:
        raise NotFoundError(f"corpus {root} has no night<N>/ folders")
    docs = []
    for night, folder in sorted(nights.items()):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            text = path.read_text(encoding="utf-8")
            docs.append(CorpusDoc(path.relative_to(folder).as_posix(), night, text))
    return NightlyCorpus(root=root, docs=docs, probes=load_probes(root / "probes.jsonl"))


def chunk_docs(docs: Sequence[CorpusDoc], tokenizer, *, org: str = "bench",
               chunk_tokens: int = 256) -> list[str]:
    """The documents cut by orgmem's own chunker (same headers and sizes as production)."""
    from orgmem.chunking import ChunkingConfig, chunk_document, token_counter

    count = token_counter(tokenizer)
    config = ChunkingConfig(chunk_tokens=chunk_tokens)
    texts = []
    for doc in docs:
        chunks = chunk_document(org, doc.path, doc.text, source_kind=doc.source_kind,
                                source_name=doc.source_name, title=doc.path, path=doc.path,
                                count_tokens=count, config=config)
        texts += [c.text for c in chunks]
    return texts
