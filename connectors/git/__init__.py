"""``git`` connector: a codebase at a branch, read incrementally commit to commit.

First sync reads the whole tree at the ref; later syncs read only the files ``git diff`` says
changed since the last synced commit (deletions and renames become tombstones). Files are read
from git objects, never from a working tree, so uncommitted and .gitignore'd files never leak in.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime
from pathlib import Path

from pydantic import Field, model_validator

from connectors.base import (
    Connector,
    Cursor,
    DocumentFailure,
    DocumentVersion,
    Fetch,
    FetchItem,
    SourceConfig,
    SourceConfigError,
    SourceError,
    cli_hints,
    config_as,
    text_hash,
)
from connectors.confine import confine_path
from connectors.filters import DEFAULT_MAX_FILE_BYTES, decode_text, path_skip_reason
from connectors.git.repo import Change, GitRepo, open_repo, remote_has
from connectors.netguard import check_git_url
from orgmem.config import get_settings

_SYMLINK, _SUBMODULE = "120000", "160000"


class GitConfig(SourceConfig):
    """Where the repository is and what to read from it."""

    path: str | None = Field(
        None, description="Local repository (or give url).", json_schema_extra=cli_hints(local_path=True)
    )
    url: str | None = Field(None, description="Clone URL (or give path).")
    branch: str = Field("HEAD", description="Branch or ref.")
    max_file_bytes: int = Field(DEFAULT_MAX_FILE_BYTES, description="Skip larger files.")

    @model_validator(mode="after")
    def _one_location(self) -> GitConfig:
        if bool(self.path) == bool(self.url):
            raise ValueError("exactly one of 'path' (local repository) or 'url' (clone URL) is required")
        if self.max_file_bytes <= 0:
            raise ValueError("'max_file_bytes' must be positive")
        return self


class GitConnector(Connector):
    kind = "git"
    config_cls = GitConfig

    def __init__(self) -> None:
        super().__init__()
        self._failed: set[str] = set()

    def _open(self, config: GitConfig) -> GitRepo:
        """The repository, confined: a local path under the roots (its git dir and alternates too),
        or a clone URL whose host is allowed."""
        policy = self.confinement
        if config.url:
            check_git_url(config.url, policy)
            return open_repo(None, config.url, get_settings().home / "cache" / "git")
        if not config.path:
            raise SourceConfigError("git source: give 'path' or 'url'")
        local = confine_path(config.path, policy, what="git repository path")
        repo = open_repo(str(local), None, get_settings().home / "cache" / "git")
        # a '.git' file or an alternates list can point at another repository's objects
        for flag in ("--absolute-git-dir", "--git-common-dir"):
            git_dir = local / repo.run("rev-parse", flag).strip()
            confine_path(str(git_dir), policy, what=f"git directory of {config.path}")
        alternates = local / repo.run("rev-parse", "--git-path", "objects/info/alternates").strip()
        if alternates.is_file():
            for line in alternates.read_text(errors="replace").splitlines():
                if line.strip() and not line.startswith("#"):
                    target = (alternates.parent.parent / line.strip()) if not line.startswith("/") else line
                    confine_path(str(target), policy, what=f"git alternate object store of {config.path}")
        return repo

    def check(self, config: SourceConfig) -> None:
        config = config_as(config, GitConfig)
        if config.url:
            check_git_url(config.url, self.confinement)
            if not remote_has(config.url, config.branch, get_settings().home / "cache" / "git"):
                raise SourceError(f"ref {config.branch!r} not found in git repository {config.url}")
            return
        self._open(config).resolve(config.branch)

    def fetch(self, config: SourceConfig, cursor: Cursor | None) -> Fetch:
        """Files changed since the cursor's commit (all files the first time); returns
        ``{"commit": head, "retry": [paths that failed]}``."""
        config = config_as(config, GitConfig)
        previous = dict(cursor or {})
        repo = self._open(config)
        head = repo.resolve(config.branch)
        old, retry = previous.get("commit"), list(previous.get("retry", []))
        if old == head and not retry:
            return self._cursor(head)
        stamp = datetime.fromisoformat(repo.commit_time(head))
        location = config.url or str(Path(config.path or "").expanduser().resolve())
        if old and repo.has_commit(old):
            wanted, gone = self._changed_paths(repo, old, head, retry)
        else:
            wanted, gone = {e.path: (e.mode, e.sha) for e in repo.ls_tree(head) if e.type == "blob"}, []
            self.live_ids = set()
        for path in gone:
            yield DocumentVersion.tombstone(path, f"{location}:{path}", title=path)
        yield from self._read(repo, wanted, config, location, head, stamp)
        return self._cursor(head)

    def _cursor(self, head: str) -> Cursor:
        return {"commit": head, "retry": sorted(self._failed)}

    def _changed_paths(
        self, repo: GitRepo, old: str, head: str, retry: list[str]
    ) -> tuple[dict[str, tuple[str, str]], list[str]]:
        """Paths to (re)read at head and paths that are gone, from the diff plus earlier failures."""
        wanted: dict[str, tuple[str, str]] = {}
        gone: list[str] = []
        changes: list[Change] = repo.diff(old, head) if old != head else []
        for ch in changes:
            if ch.status in "DR":
                gone.append(ch.old_path)
            if ch.status != "D":
                wanted[ch.new_path] = (ch.new_mode, ch.new_sha)
        if retry:
            at_head = {e.path: (e.mode, e.sha) for e in repo.ls_tree(head) if e.type == "blob"}
            for path in retry:
                if path in at_head:
                    wanted.setdefault(path, at_head[path])
                elif path not in gone:
                    gone.append(path)
        return wanted, sorted(set(gone) - set(wanted))

    def _read(
        self,
        repo: GitRepo,
        wanted: dict[str, tuple[str, str]],
        config: GitConfig,
        location: str,
        head: str,
        stamp: datetime,
    ) -> Iterator[FetchItem]:
        sizes = repo.sizes(sha for _, sha in wanted.values())
        to_read: dict[str, list[str]] = {}
        for path in sorted(wanted):
            mode, sha = wanted[path]
            reason = (
                "symlink"
                if mode == _SYMLINK
                else "submodule"
                if mode == _SUBMODULE
                else path_skip_reason(path, sizes.get(sha), config.max_file_bytes)
            )
            if reason:
                yield from self._skip(path, reason, location)
            else:
                to_read.setdefault(sha, []).append(path)
        try:
            for sha, data in repo.read_blobs(to_read):
                for path in to_read[sha]:
                    text, reason = decode_text(data)
                    if text is None:
                        yield from self._skip(path, reason or "binary", location)
                        continue
                    if self.live_ids is not None:
                        self.live_ids.add(path)
                    yield DocumentVersion(
                        external_id=path,
                        uri=f"{location}:{path}",
                        text=text,
                        content_hash=text_hash(text),
                        title=path,
                        updated_at=stamp,
                        metadata={"commit": head, "path": path, "blob": sha},
                    )
        except OSError as exc:
            pending = sorted(p for paths in to_read.values() for p in paths)
            self._failed.update(pending)
            yield DocumentFailure(
                item=f"{location}:{pending[0] if pending else ''}",
                error=f"reading blobs from {repo.label} failed: {exc}",
            )

    def _skip(self, path: str, reason: str, location: str) -> Iterator[FetchItem]:
        """Count a skip; a file that became unreadable (e.g. now binary) is tombstoned in incremental runs."""
        self.skipped[reason] += 1
        if self.live_ids is None:
            yield DocumentVersion.tombstone(path, f"{location}:{path}", title=path)

    def retry_cursor(self, previous: Cursor | None, cursor: Cursor, unstored: Collection[str]) -> Cursor:
        """The commit still moves; unstored paths join the retry list, read again next time."""
        return {"commit": cursor["commit"], "retry": sorted(set(cursor["retry"]) | set(unstored))}
