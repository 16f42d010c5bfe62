"""Per-key request limits, in this process: a rate (token bucket) and a concurrency (in-flight slots).

A bucket holds up to ``burst`` requests and refills at ``per_minute / 60`` per second; a request
that finds it empty is refused with the seconds until the next token (``Retry-After``). The rate
bounds how often a key starts requests, not how many of its long generations run at once, so
generations also take one of the key's ``per_key`` slots for as long as they run. With several
server processes each enforces its own share; that is the usual trade for no shared state.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Token buckets keyed by API key id; ``per_minute == 0`` turns limiting off."""

    def __init__(self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[int, tuple[float, float]] = {}  # key id -> (tokens, last refill time)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def acquire(self, key_id: int) -> float | None:
        """Take one request's token: None if allowed, else the seconds to wait before retrying."""
        if not self.enabled:
            return None
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return None
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / self.rate

    @staticmethod
    def retry_after_header(seconds: float) -> str:
        return str(max(1, math.ceil(seconds)))


class Slot:
    """One in-flight request of a key. ``release`` may be called from any thread, any number of times
    (the engine thread and the request's event loop may both end a generation); it frees one slot."""

    def __init__(self, limiter: ConcurrencyLimiter, key_id: int) -> None:
        self._limiter, self.key_id = limiter, key_id
        self._released = False

    def release(self) -> None:
        self._limiter._release(self)


class ConcurrencyLimiter:
    """At most ``per_key`` slots per API key id; ``per_key == 0`` turns limiting off (still counted)."""

    def __init__(self, per_key: int) -> None:
        self.per_key = per_key
        self._counts: dict[int, int] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.per_key > 0

    def acquire(self, key_id: int) -> Slot | None:
        """A slot for the key, or None when all of its slots are taken."""
        with self._lock:
            held = self._counts.get(key_id, 0)
            if self.enabled and held >= self.per_key:
                return None
            self._counts[key_id] = held + 1
        return Slot(self, key_id)

    def in_flight(self, key_id: int) -> int:
        with self._lock:
            return self._counts.get(key_id, 0)

    def _release(self, slot: Slot) -> None:
        with self._lock:
            if slot._released:
                return
            slot._released = True
            held = self._counts.get(slot.key_id, 0) - 1
            if held > 0:
                self._counts[slot.key_id] = held
            else:
                self._counts.pop(slot.key_id, None)
