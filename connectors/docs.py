"""``docs`` connector: a folder of Markdown, plain text, HTML and PDF files.

Change detection is by content hash; the cursor remembers each file's hash, size and mtime so an
unchanged file is not even read again. Files gone from the folder become tombstones. A file that
fails to parse (a broken PDF) is a per-document failure and stays out of the cursor, so it is
retried next time while the rest of the folder syncs.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection, Iterator
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISREG
from typing import Any

from pydantic import Field, field_validator

from connectors.base import (
    Connector,
    Cursor,
    DocumentFailure,
    DocumentVersion,
    Fetch,
    FetchItem,
    SourceConfig,
    SourceError,
    cli_hints,
    config_as,
    text_hash,
)
from connectors.confine import confine_path, inside, read_no_follow
from connectors.extract import html_title, html_to_text, pdf_to_text
from connectors.filters import VENDORED_DIRS

DEFAULT_EXTENSIONS = [".md", ".markdown", ".txt", ".rst", ".html", ".htm", ".pdf"]


class DocsConfig(SourceConfig):
    """A folder and which file types in it are documents."""

    path: str = Field(description="The folder of documents.", json_schema_extra=cli_hints(local_path=True))
    extensions: list[str] = Field(DEFAULT_EXTENSIONS, description="File types read (repeat it).")
    max_file_bytes: int = Field(20_000_000, description="Skip larger files.")

    @field_validator("extensions")
    @classmethod
    def _dotted(cls, value: list[str]) -> list[str]:
        unknown = [e for e in value if e.lower() not in DEFAULT_EXTENSIONS]
        if unknown:
            raise ValueError(f"unsupported extensions {unknown}; supported: {DEFAULT_EXTENSIONS}")
        return [e.lower() for e in value]


def extract(path: Path, data: bytes) -> tuple[str, str]:
    """(title, text) of one document by its extension; ValueError when it cannot be parsed."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return path.stem, pdf_to_text(data)
    try:
        raw = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if suffix in (".html", ".htm"):
        return html_title(raw) or path.stem, html_to_text(raw)
    first = raw.lstrip().splitlines()[0] if raw.strip() else ""
    title = first.lstrip("#").strip() if first.startswith("#") else path.stem
    return title, raw


class DocsConnector(Connector):
    kind = "docs"
    config_cls = DocsConfig

    def __init__(self) -> None:
        super().__init__()
        self._prev: dict[str, list[Any]] = {}
        self._files: dict[str, list[Any]] = {}

    def _root(self, config: DocsConfig) -> Path:
        """The folder, resolved and confined; the same error at add time and at every sync."""
        root = confine_path(config.path, self.confinement, what="docs folder")
        if not root.is_dir():
            raise SourceError(f"docs folder {config.path} does not exist or is not a folder")
        return root

    def check(self, config: SourceConfig) -> None:
        config = config_as(config, DocsConfig)
        root = self._root(config)
        if not os.access(root, os.R_OK | os.X_OK):
            raise SourceError(f"docs folder {config.path} is not readable by orgmem")

    def _walk(self, root: Path, config: DocsConfig) -> Iterator[tuple[str, Path, os.stat_result]]:
        """(relative id, path, stat) of candidate files in a stable order; skips counted by reason.

        Folder links are not followed (os.walk); a file link is read only when it resolves inside
        the folder, so a link planted later cannot lead out of it.
        """
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in VENDORED_DIRS)
            for name in sorted(filenames):
                path = Path(dirpath) / name
                rel = path.relative_to(root).as_posix()
                if name.startswith(".") or path.suffix.lower() not in config.extensions:
                    self.skipped["unsupported-type"] += 1
                    continue
                target = inside(path, root, self.confinement)
                if target is None:
                    self.skipped["symlink-outside"] += 1
                    continue
                path = target
                stat = path.stat()
                if not S_ISREG(stat.st_mode):  # a FIFO or device would block or stream forever
                    self.skipped["not-a-file"] += 1
                    continue
                if stat.st_size > config.max_file_bytes:
                    self.skipped["too-large"] += 1
                    continue
                yield rel, path, stat

    def fetch(self, config: SourceConfig, cursor: Cursor | None) -> Fetch:
        """Changed files and tombstones; returns ``{"files": {id: [sha256, size, mtime_ns]}}``."""
        config = config_as(config, DocsConfig)
        root = self._root(config)
        self._prev = dict((cursor or {}).get("files", {}))
        for rel, path, stat in self._walk(root, config):
            yield from self._one(rel, path, stat)
        for rel in sorted(set(self._prev) - set(self._files)):
            yield DocumentVersion.tombstone(rel, (root / rel).resolve().as_uri(), title=rel)
        return {"files": dict(self._files)}

    def _one(self, rel: str, path: Path, stat: os.stat_result) -> Iterator[FetchItem]:
        prev = self._prev.get(rel)
        if prev and prev[1] == stat.st_size and prev[2] == stat.st_mtime_ns:
            self._files[rel] = prev
            return
        try:
            data = read_no_follow(path)
        except OSError as exc:
            yield DocumentFailure(item=str(path), error=f"cannot read {path}: {exc}", external_id=rel)
            return
        digest = hashlib.sha256(data).hexdigest()
        self._files[rel] = [digest, stat.st_size, stat.st_mtime_ns]
        if prev and prev[0] == digest:
            return
        try:
            title, text = extract(path, data)
        except ValueError as exc:
            del self._files[rel]
            yield DocumentFailure(item=str(path), error=f"cannot parse {path}: {exc}", external_id=rel)
            return
        if not text.strip():
            self.skipped["empty"] += 1
            return
        yield DocumentVersion(
            external_id=rel,
            uri=path.resolve().as_uri(),
            text=text,
            content_hash=text_hash(text),
            title=title,
            updated_at=datetime.fromtimestamp(stat.st_mtime, UTC),
            metadata={"path": rel, "format": path.suffix.lower().lstrip(".")},
        )

    def retry_cursor(self, previous: Cursor | None, cursor: Cursor, unstored: Collection[str]) -> Cursor:
        """Unstored files leave the cursor (read again); an unstored tombstone keeps its old entry so
        the removal is seen again."""
        before = (previous or {}).get("files", {})
        after = cursor["files"]
        files = {rel: entry for rel, entry in after.items() if rel not in unstored}
        for rel in unstored:
            if rel in before and rel not in after:
                files[rel] = before[rel]
        return {"files": files}
