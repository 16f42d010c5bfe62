"""Give freed heap memory back to the operating system after a large request (glibc ``malloc_trim``).

Why: parsing a multi-megabyte body allocates through glibc's ``malloc``; when the request ends
Python frees it, but glibc keeps the freed pages in its arenas, so the process stays as large as
its largest request (issue 14: 0.8 -> 3.9 GB, never released). ``malloc_trim(0)`` hands the free
pages back. Elsewhere (macOS, musl, Windows) there is no such call and ``trim`` does nothing.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable
from functools import lru_cache


@lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None).malloc_trim  # the C library this process already runs on
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn


def available() -> bool:
    return _malloc_trim() is not None


def trim() -> None:
    """Return free heap pages to the OS where glibc allows it; a no-op elsewhere."""
    fn = _malloc_trim()
    if fn is not None:
        fn(0)
