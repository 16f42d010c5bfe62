"""Prometheus metrics of one server: requests, latency, tokens, loaded memories, swaps.

Each app gets its own ``CollectorRegistry`` (tests start several apps in one process). A "swap"
is counted when an org's served checkpoint differs from the one this server last answered that
org with: a pin, unpin, rollback or promotion becoming visible, without a restart.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class ServingMetrics:
    """The metric families; ``render()`` is the body of ``GET /metrics``."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter("orgmem_requests_total", "HTTP requests by route and status.",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("orgmem_request_seconds", "Time to the response's first byte.",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.generation = Histogram("orgmem_generation_seconds", "Whole generation time per request.",
                                    ["org"], buckets=LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram("orgmem_time_to_first_token_seconds", "Submit to first token.",
                              ["org"], buckets=LATENCY_BUCKETS, registry=r)
        self.tokens = Counter("orgmem_tokens_total", "Tokens processed, by org and kind (prompt|completion).",
                              ["org", "kind"], registry=r)
        self.swaps = Counter("orgmem_swaps_total", "Changes of an org's served checkpoint seen here.",
                             ["org"], registry=r)
        self.memory_loads = Counter("orgmem_memory_loads_total", "Memories loaded from the store.",
                                    registry=r)
        self.memory_load_seconds = Histogram("orgmem_memory_load_seconds", "Store read + verify + build.",
                                             buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("orgmem_engine_batch_size", "Rows per forward pass.",
                                    buckets=(1, 2, 4, 8, 16, 32, 64), registry=r)
        self.step_seconds = Histogram("orgmem_engine_step_seconds", "Seconds per forward pass.",
                                      buckets=LATENCY_BUCKETS, registry=r)
        self.rate_limited = Counter("orgmem_rate_limited_total",
                                    "Requests refused by a key's rate or concurrency limit.", registry=r)
        self.loaded_memories = Gauge("orgmem_loaded_memories", "Org memories currently loaded.", registry=r)
        self.loaded_orgs = Gauge("orgmem_loaded_orgs", "Orgs whose served memory is loaded.", registry=r)
        self.loaded_bytes = Gauge("orgmem_loaded_memory_bytes", "Bytes of loaded memory weights.", registry=r)
        self.active = Gauge("orgmem_active_requests", "Requests being decoded.", registry=r)
        self.waiting = Gauge("orgmem_waiting_requests", "Requests waiting for the engine.", registry=r)
        self._served: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def bind(self, *, loaded: Callable[[], float], loaded_orgs: Callable[[], float],
             loaded_bytes: Callable[[], float], active: Callable[[], float],
             waiting: Callable[[], float]) -> None:
        """Gauges read live values at scrape time."""
        self.loaded_memories.set_function(loaded)
        self.loaded_orgs.set_function(loaded_orgs)
        self.loaded_bytes.set_function(loaded_bytes)
        self.active.set_function(active)
        self.waiting.set_function(waiting)

    def observe_served(self, org: str, checkpoint_id: str | None) -> bool:
        """Record what ``org`` is answered with; True (and a swap counted) when it changed."""
        with self._lock:
            known = org in self._served
            previous = self._served.get(org)
            self._served[org] = checkpoint_id
        if known and previous != checkpoint_id:
            self.swaps.labels(org=org).inc()
            return True
        return False

    def render(self) -> bytes:
        return generate_latest(self.registry)
