"""LRU cache of loaded org memories, keyed by the content hash of ``memory.safetensors``.

Keying by content (not checkpoint id or org) means a pin back to an earlier checkpoint reuses
its loaded weights, and nothing can ever serve stale weights under a reused name. Concurrent
requests for a memory not yet loaded wait for one load (single flight). Eviction only drops the
cache's reference: a request still decoding with an evicted memory keeps its own reference.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from orgmem.memory.rows import RowMemory

logger = logging.getLogger(__name__)


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0


class MemoryCache:
    """At most ``capacity`` loaded memories; least recently used leaves first."""

    def __init__(self, capacity: int, on_load: Callable[[str, float], None] | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"memory cache capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.on_load = on_load
        self.stats = CacheStats()
        self._items: OrderedDict[str, RowMemory] = OrderedDict()
        self._loading: dict[str, Future[RowMemory]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, sha256: str) -> bool:
        with self._lock:
            return sha256 in self._items

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(m.nbytes for m in self._items.values())

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._items)

    def get(self, sha256: str, load: Callable[[], RowMemory], *, label: str = "") -> RowMemory:
        """The memory with content ``sha256``, calling ``load()`` once if it is not cached."""
        with self._lock:
            memory = self._items.get(sha256)
            if memory is not None:
                self._items.move_to_end(sha256)
                self.stats.hits += 1
                return memory
            future = self._loading.get(sha256)
            owner = future is None
            if owner:
                future = self._loading[sha256] = Future()
                self.stats.misses += 1
        if future is None:  # set above under the lock, for either side
            raise RuntimeError(f"memory {sha256[:12]} has no load in flight")
        if not owner:
            return future.result()
        return self._load(sha256, load, future, label)

    def _load(self, sha256: str, load: Callable[[], RowMemory], future: Future[RowMemory], label: str
              ) -> RowMemory:
        t0 = time.perf_counter()
        try:
            memory = load()
        except BaseException as exc:
            with self._lock:
                self._loading.pop(sha256, None)
            future.set_exception(exc)
            raise
        seconds = time.perf_counter() - t0
        with self._lock:
            self._loading.pop(sha256, None)
            self._items[sha256] = memory
            while len(self._items) > self.capacity:
                evicted, _ = self._items.popitem(last=False)
                self.stats.evictions += 1
                logger.info("memory evicted", extra={"memory_sha256": evicted[:12]})
        future.set_result(memory)
        logger.info("memory loaded", extra={"memory_sha256": sha256[:12], "what": label,
                                            "seconds": round(seconds, 3), "bytes": memory.nbytes})
        if self.on_load is not None:
            self.on_load(sha256, seconds)
        return memory
