"""What one sync did, in numbers a person (and a test) can check."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SyncReport:
    """Counts of one source's sync. ``error`` is set when the source as a whole could not be read."""

    org: str
    source: str
    kind: str
    seen: int = 0  # versions and tombstones the connector yielded
    new_versions: int = 0
    unchanged: int = 0
    tombstones: int = 0
    tombstoned: list[int] = field(default_factory=list)  # document ids deleted at the source
    forgotten: list[str] = field(default_factory=list)  # receipts of tombstones forgotten (forget_on_delete)
    skipped: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (item, error)
    redactions: int = 0
    chunks_added: int = 0
    chunks_excluded: int = 0  # pending chunks of changed/deleted documents withdrawn from training
    chars_stored: int = 0
    cursor_advanced: bool = False
    error: str | None = None
    elapsed_s: float = 0.0
    # seconds spent in governance, chunking, database
    timings: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "org": self.org,
            "source": self.source,
            "kind": self.kind,
            "seen": self.seen,
            "new_versions": self.new_versions,
            "unchanged": self.unchanged,
            "tombstones": self.tombstones,
            "skipped": dict(sorted(self.skipped.items())),
            "failures": [list(f) for f in self.failures],
            "redactions": self.redactions,
            "chunks_added": self.chunks_added,
            "chunks_excluded": self.chunks_excluded,
            "chars_stored": self.chars_stored,
            "cursor_advanced": self.cursor_advanced,
            "forgotten": list(self.forgotten),
            "error": self.error,
            "elapsed_s": round(self.elapsed_s, 3),
            "timings": {k: round(v, 3) for k, v in sorted(self.timings.items())},
        }

    def summary(self) -> str:
        """One line for the CLI and logs."""
        skipped = sum(self.skipped.values())
        line = (
            f"{self.org}/{self.source} ({self.kind}): {self.new_versions} new, {self.unchanged} unchanged, "
            f"{self.tombstones} deleted, {skipped} skipped, {len(self.failures)} failed, "
            f"{self.redactions} redactions, {self.chunks_added} chunks added"
        )
        if self.forgotten:
            line += f"; {len(self.forgotten)} deleted item(s) forgotten: {', '.join(self.forgotten)}"
        return f"{line}; ERROR: {self.error}" if self.error else line
