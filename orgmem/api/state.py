"""Everything one server process holds: settings, database, store, base, engine, cache, metrics.

Routes reach it as ``request.app.state.serving``. It captures the database and store URLs when
the app is built and never re-reads the environment, so a running server keeps one identity.
The base loads in a background thread: ``/healthz`` answers at once, ``/readyz`` and the model
routes say 503 until the base is in memory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from sqlalchemy import text
from sqlalchemy.orm import Session

from orgmem.api.ratelimit import ConcurrencyLimiter, RateLimiter
from orgmem.api.redact import Redactor, internal_locations
from orgmem.api.turns import CompletedTurn, TurnListener
from orgmem.checkpoints import MEMORY, load_checkpoint_objects
from orgmem.config import Settings
from orgmem.db.session import session_scope
from orgmem.errors import ApiError
from orgmem.keys import ApiKeyIdentity
from orgmem.memory import RowMemory, build_row_memory
from orgmem.serving.config import ServeSettings
from orgmem.serving.engine import GenerationEngine
from orgmem.serving.memcache import MemoryCache
from orgmem.serving.metrics import ServingMetrics
from orgmem.serving.resolve import MemoryLayer, ResolvedModel, resolve_model
from orgmem.serving.stack import StackCache
from orgmem.serving.threads import single_threaded_torch
from orgmem.store import ObjectStore, open_store

logger = logging.getLogger(__name__)


class ServingState:
    """The server's shared objects (thread-safe where routes share them)."""

    def __init__(self, settings: Settings, serve: ServeSettings, base=None,
                 store: ObjectStore | None = None, *, engine_in_caller: bool = False) -> None:
        """``engine_in_caller``: the engine is not given a thread; a caller (the main thread of
        ``orgmem serve``) runs it with ``run_engine_here``."""
        self.settings = settings
        self.engine_in_caller = engine_in_caller
        self._engine_built = threading.Event()
        self.serve = serve
        self.db_url = settings.database_url
        self.store = store or open_store(settings=settings)
        self.redact = Redactor(internal_locations(settings, getattr(self.store, "url", None)))
        self.metrics = ServingMetrics()
        self.limiter = RateLimiter(serve.rate_limit_per_minute, serve.rate_limit_burst)
        self.concurrency = ConcurrencyLimiter(serve.max_concurrent_per_key)
        self.cache = MemoryCache(serve.cache_size, on_load=self._on_load)
        self.stacks = StackCache(serve.cache_size)
        self.base = base
        self.engine: GenerationEngine | None = None
        self.load_error: BaseException | None = None
        self._ready = threading.Event()
        self._org_memory: dict[str, str | None] = {}
        self._lock = threading.Lock()
        self.turn_listeners: list[TurnListener] = []  # feedback, recorded conversations (api/turns.py)

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        if self.serve.threads:
            torch.set_num_threads(self.serve.threads)
        if self.base is not None:
            self._start_engine()
        else:
            threading.Thread(target=self._load_base, name="orgmem-base-loader", daemon=True).start()

    def _load_base(self) -> None:
        from orgmem.models import load_base, resolve_device
        from orgmem.models.precision import serving_dtype

        try:
            device, _ = resolve_device(self.settings.device)
            self.base = load_base(self.settings.base_model, device=device,
                                  dtype=serving_dtype(self.serve.dtype, device))
            self._start_engine()
        except BaseException as exc:  # reported by /readyz and every model route
            self.load_error = exc
            logger.exception("base model failed to load", extra={"base": self.settings.base_model})

    def _start_engine(self) -> None:
        s = self.serve
        engine = GenerationEngine(self.base, max_batch=s.max_batch, prefill_tokens=s.prefill_tokens,
                                  max_queue=s.max_queue, on_step=self._on_step,
                                  max_generation_s=s.max_generation_seconds or None)
        self.engine = engine
        if not self.engine_in_caller:
            self.engine.start()
        self._engine_built.set()
        self.metrics.bind(loaded=lambda: len(self.cache), loaded_orgs=self._loaded_orgs,
                          loaded_bytes=lambda: self.cache.nbytes, active=lambda: engine.active,
                          waiting=lambda: engine.waiting)
        self._ready.set()
        logger.info("serving ready",
                    extra={"base": self.base.name, "fingerprint": self.base.fingerprint[:12]})

    def stop(self) -> None:
        if self.engine is not None:
            self.engine.stop()

    def run_engine_here(self, should_stop) -> None:
        """Run the engine on the calling thread once the base is loaded, until ``should_stop()``,
        ``stop()`` or a base that failed to load (then return; ``/readyz`` reports the error)."""
        while not self._engine_built.wait(0.5):
            if should_stop() or self.load_error is not None:
                return
        if self.engine is not None:  # set before _engine_built
            self.engine.run_here(should_stop)

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self.engine is not None and self.engine.alive

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def require_engine(self) -> GenerationEngine:
        if self.load_error is not None:  # the cause (paths, exception text) is in the server log only
            raise ApiError(503, f"base model {self.settings.base_model!r} failed to load; the server log "
                           "has the details", "server_error", "model_unavailable")
        if not self.ready:
            raise ApiError(503, f"base model {self.settings.base_model!r} is still loading; retry shortly",
                           "server_error", "model_loading", headers={"Retry-After": "5"})
        return self.engine  # type: ignore[return-value]

    def completed(self, turn: CompletedTurn) -> None:
        """Hand a finished reply to every listener (on a worker thread: listeners write the database)."""
        for listener in self.turn_listeners:
            try:
                listener(turn)
            except Exception:  # the client has its reply; a listener's failure is only logged
                logger.exception("turn listener failed", extra={
                    "org": turn.resolved.org, "checkpoint": turn.resolved.label,
                    "request": turn.response_id, "listener": getattr(listener, "__name__", repr(listener))})

    # -- database ----------------------------------------------------------------------------------
    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        with session_scope(self.db_url, write=write) as session:
            yield session

    def check_database(self) -> None:
        with self.session() as session:
            session.execute(text("SELECT 1"))

    # -- models ------------------------------------------------------------------------------------
    def resolve(self, identity: ApiKeyIdentity, model: str) -> ResolvedModel:
        """Resolve ``model`` for this key now (database read), and note swaps for the metrics."""
        engine = self.require_engine()
        with self.session() as session:
            resolved = resolve_model(session, identity, model, engine.base.fingerprint)
        if resolved.model == resolved.org:  # the org's served model, not an explicit ORG@CKPT
            with self._lock:
                self._org_memory[resolved.org] = resolved.memory_sha256
            if self.metrics.observe_served(resolved.org, resolved.checkpoint_id):
                logger.info("served checkpoint changed", extra={"org": resolved.org,
                                                                "checkpoint": resolved.checkpoint_id})
        return resolved

    def memory_for(self, resolved: ResolvedModel) -> RowMemory | None:
        """The loaded memory of the resolved checkpoints (each from the cache, or loaded and verified),
        stacked org first when the key also reaches group memories; None for the bare base."""
        layers = resolved.layers
        if not layers:
            return None
        return self.stacks.get([self._load_layer(resolved.org, layer) for layer in layers])

    def _load_layer(self, org: str, layer: MemoryLayer) -> RowMemory:
        engine = self.require_engine()
        whose = "" if layer.audience == "org" else f" (group {layer.audience!r})"
        source = f"checkpoint {layer.checkpoint_id!r} of org {org!r}{whose}"

        def load() -> RowMemory:  # on an HTTP worker thread: one torch thread (see serving/threads.py)
            with self.session() as session:
                data = load_checkpoint_objects(session, self.store, layer.checkpoint_id, [MEMORY])[MEMORY]
            with single_threaded_torch():
                return build_row_memory(engine.base, data, sha256=layer.memory_sha256, source=source)

        return self.cache.get(layer.memory_sha256, load, label=source)

    def clear_cache(self) -> None:
        """Forget every loaded memory (running requests keep theirs); the next requests load afresh."""
        self.cache = MemoryCache(self.serve.cache_size, on_load=self._on_load)
        self.stacks = StackCache(self.serve.cache_size)

    def _loaded_orgs(self) -> float:
        with self._lock:
            shas = list(self._org_memory.values())
        return float(sum(1 for sha in shas if sha is not None and sha in self.cache))

    def _on_load(self, sha256: str, seconds: float) -> None:
        self.metrics.memory_loads.inc()
        self.metrics.memory_load_seconds.observe(seconds)

    def _on_step(self, rows: int, seconds: float) -> None:
        self.metrics.batch_size.observe(rows)
        self.metrics.step_seconds.observe(seconds)
