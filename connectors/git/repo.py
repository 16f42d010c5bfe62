"""A thin wrapper over the ``git`` CLI: resolve refs, list trees, diff commits, read blobs in bulk.

Why the CLI and not a library: it is everywhere, reads every repository format, and one
long-lived ``git cat-file --batch`` process reads thousands of blobs without a process each.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from connectors.base import SourceError

# GIT_ALLOW_PROTOCOL: no file://, ext:: or other transports, whatever a URL or a remote says
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C",
            "GIT_ALLOW_PROTOCOL": "https:http:ssh:git"}
# a redirect could lead a checked clone URL to an internal address: never follow one
_NETWORK = ("-c", "http.followRedirects=false")
REMOTE_TIMEOUT_S = 120


@dataclass(frozen=True)
class TreeEntry:
    """One path in a commit's tree (from ``git ls-tree -r -l``)."""

    mode: str
    type: str  # blob | commit (submodule)
    sha: str
    size: int | None
    path: str


@dataclass(frozen=True)
class Change:
    """One line of ``git diff --raw -M``: status letter A/M/D/R/C/T with old and new paths."""

    status: str
    old_path: str
    new_path: str
    new_mode: str
    new_sha: str


class GitRepo:
    """A local repository (bare or not) read only through git plumbing."""

    def __init__(self, path: Path, label: str) -> None:
        self.path = path
        self.label = label  # what error messages name: the clone URL or the local path

    def run(self, *args: str, input_text: str | None = None, timeout: float | None = None) -> str:
        """Run git in this repository; a failure raises SourceError naming the repo and command."""
        try:
            proc = subprocess.run(  # nosec B603 B607  # argv list, no shell; git from the server's PATH
                ["git", "-C", str(self.path), *args],
                input=input_text,
                capture_output=True,
                text=True,
                env={**os.environ, **_GIT_ENV},
                check=False,
                timeout=timeout,
            )
        except FileNotFoundError:
            raise SourceError(
                "the `git` executable is not installed; it is needed to read git sources"
            ) from None
        except subprocess.TimeoutExpired:
            raise SourceError(f"git {args[0]} for repository {self.label} took over {timeout} s") from None
        if proc.returncode != 0:
            raise SourceError(f"git {args[0]} failed for repository {self.label}: {proc.stderr.strip()}")
        return proc.stdout

    def resolve(self, ref: str) -> str:
        """Commit sha of ``ref``; an unknown branch names the ref and the repo."""
        try:
            return self.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
        except SourceError:
            raise SourceError(f"ref {ref!r} not found in git repository {self.label}") from None

    def has_commit(self, sha: str) -> bool:
        try:
            self.run("cat-file", "-e", f"{sha}^{{commit}}")
        except SourceError:
            return False
        return True

    def commit_time(self, sha: str) -> str:
        """ISO-8601 committer date of ``sha``."""
        return self.run("show", "-s", "--format=%cI", sha).strip()

    def ls_tree(self, commit: str) -> list[TreeEntry]:
        """Every path in the tree of ``commit`` (tracked files only, so .gitignore'd files never appear)."""
        entries = []
        for record in self.run("ls-tree", "-r", "-l", "-z", "--full-tree", commit).split("\0"):
            if not record:
                continue
            meta, path = record.split("\t", 1)
            mode, kind, sha, size = meta.split()
            entries.append(TreeEntry(mode, kind, sha, None if size == "-" else int(size), path))
        return entries

    def diff(self, old: str, new: str) -> list[Change]:
        """Files changed between two commits, renames detected (``git diff --raw -M -z``)."""
        fields = self.run("diff", "--raw", "-M", "-z", "--no-abbrev", old, new).split("\0")
        changes, i = [], 0
        while i < len(fields) and fields[i]:
            _, new_mode, _, new_sha, status = fields[i].lstrip(":").split()
            letter = status[0]
            if letter in "RC":
                changes.append(Change(letter, fields[i + 1], fields[i + 2], new_mode, new_sha))
                i += 3
            else:
                changes.append(Change(letter, fields[i + 1], fields[i + 1], new_mode, new_sha))
                i += 2
        return changes

    def sizes(self, shas: Iterable[str]) -> dict[str, int]:
        """Object sizes in one ``cat-file --batch-check`` call (to skip big files before reading them)."""
        wanted = list(dict.fromkeys(shas))
        if not wanted:
            return {}
        out = self.run(
            "cat-file", "--batch-check=%(objectname) %(objectsize)", input_text="\n".join(wanted) + "\n"
        )
        result = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2:
                result[parts[0]] = int(parts[1])
        return result

    def read_blobs(self, shas: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """Stream blob contents through one ``git cat-file --batch`` process.

        The object names are written by a helper thread while this one reads, so there is no
        round trip per blob (and no deadlock when both pipes fill up).
        """
        wanted = list(shas)
        proc = subprocess.Popen(  # nosec B603 B607  # argv list, no shell; git from the server's PATH
            ["git", "-C", str(self.path), "cat-file", "--batch", "--buffer"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **_GIT_ENV},
        )
        if proc.stdin is None or proc.stdout is None:  # PIPE was asked for: never, but no assert (-O)
            raise SourceError("git cat-file started without its pipes")
        stdin = proc.stdin

        def feed() -> None:
            try:
                stdin.write("".join(f"{sha}\n" for sha in wanted).encode())
            except (BrokenPipeError, ValueError):  # the reader stopped early
                pass
            finally:
                with contextlib.suppress(OSError):
                    stdin.close()

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        try:
            for sha in wanted:
                header = proc.stdout.readline().decode().split()
                if len(header) != 3:
                    raise SourceError(f"git object {sha} is missing in repository {self.label}")
                data = proc.stdout.read(int(header[2]))
                proc.stdout.read(1)  # trailing newline
                yield sha, data
        finally:
            proc.stdout.close()
            proc.kill()
            proc.wait()
            writer.join()


def open_repo(path: str | None, url: str | None, cache_dir: Path) -> GitRepo:
    """The repository a source points at: a local path as is, a URL cloned (bare) into ``cache_dir``."""
    if path:
        local = Path(path).expanduser()
        if not local.exists():
            raise SourceError(f"git repository path {local} does not exist")
        repo = GitRepo(local, str(local))
        try:
            repo.run("rev-parse", "--git-dir")
        except SourceError:
            raise SourceError(f"{local} is not a git repository") from None
        return repo
    if not url:
        raise SourceError("a git source needs a path or a url")
    clone = cache_dir / (hashlib.sha256(url.encode()).hexdigest()[:20] + ".git")
    repo = GitRepo(clone, url)
    if not clone.exists():
        clone.parent.mkdir(parents=True, exist_ok=True)
        GitRepo(clone.parent, url).run(*_NETWORK, "clone", "--bare", "--quiet", url, str(clone))
    else:
        repo.run(
            *_NETWORK,
            "fetch",
            "--quiet",
            "--prune",
            "--force",
            url,
            "+refs/heads/*:refs/heads/*",
            "+refs/tags/*:refs/tags/*",
        )
    return repo


def remote_has(url: str, ref: str, cwd: Path) -> bool:
    """Whether the remote answers and, unless ``ref`` is HEAD, has that branch or tag (``ls-remote``)."""
    cwd.mkdir(parents=True, exist_ok=True)
    probe = GitRepo(cwd, url)
    if ref == "HEAD":
        probe.run(*_NETWORK, "ls-remote", "--quiet", url, "HEAD", timeout=REMOTE_TIMEOUT_S)
        return True
    out = probe.run(*_NETWORK, "ls-remote", "--quiet", url, ref, f"refs/heads/{ref}", f"refs/tags/{ref}",
                    timeout=REMOTE_TIMEOUT_S)
    return bool(out.strip())
