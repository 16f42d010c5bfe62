"""Local paths of a source: allowed only under the configured roots, never into orgmem's own files.

Paths are resolved with every symlink followed before they are compared, so a link inside a root
that points out is refused. Connectors call ``confine_path`` when a source is added and again at
each sync (the roots may have changed), and ``inside`` for each file they find while walking, so
a symlink planted later in an allowed folder is not followed out.
"""

from __future__ import annotations

import os
from pathlib import Path

from connectors.base import SourceError
from connectors.policy import SourcePolicy


class PathRefusedError(SourceError):
    """A source path outside what the operator allows; the message names the path and why."""

    exit_code = 8


def confine_path(raw: str, policy: SourcePolicy, *, what: str) -> Path:
    """The resolved path ``raw`` names, or PathRefusedError saying why this caller may not read it.

    Existence is not checked here (the connector does that next), so a refused caller learns
    nothing about files outside its roots.
    """
    path = Path(raw).expanduser()
    if not path.is_absolute():
        raise PathRefusedError(f"{what} {raw!r} must be an absolute path")
    resolved = path.resolve()
    shown = str(path) if resolved == path else f"{path} (resolves to {resolved})"
    for own, label in policy.denied:
        if resolved.is_relative_to(own) or own.is_relative_to(resolved):
            raise PathRefusedError(f"{what} {shown} is refused: it is or contains {label}")
    if policy.unconfined:
        return resolved
    if not policy.roots:
        raise PathRefusedError(
            f"{what} {shown} is refused: no source roots are configured, so sources added through the "
            "API may not name local paths (the operator sets ORGMEM_SOURCE_ROOTS)"
        )
    if not any(resolved.is_relative_to(root) for root in policy.roots):
        roots = ", ".join(str(r) for r in policy.roots)
        raise PathRefusedError(
            f"{what} {shown} is outside the allowed source roots for org {policy.org!r} "
            f"({roots}; ORGMEM_SOURCE_ROOTS={policy.roots_setting})"
        )
    return resolved


def inside(path: Path, root: Path, policy: SourcePolicy) -> Path | None:
    """``path`` resolved when it stays inside the (resolved) ``root`` and out of orgmem's files, else None."""
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):  # dangling or looping link
        return None
    if not resolved.is_relative_to(root):
        return None
    if any(resolved.is_relative_to(own) for own, _ in policy.denied):
        return None
    return resolved


def read_no_follow(path: Path) -> bytes:
    """Bytes of a regular file, refusing a symlink swapped in at the last component since the check."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        return fh.read()
