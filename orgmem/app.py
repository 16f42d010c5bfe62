"""``create_app()``: the FastAPI application of ``orgmem serve``.

One app = one ``ServingState`` (base, engine, memory cache, metrics), started and stopped with
the app's lifespan. Tests pass a preloaded tiny base; ``orgmem serve`` loads the configured one.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request

from orgmem.api import (
    accountability_routes,
    admin_corrections,
    admin_jobs,
    admin_routes,
    feedback_routes,
    openai_routes,
    ops_routes,
    responses_routes,
)
from orgmem.api.bodylimit import BodySizeLimit
from orgmem.api.conversation_recorder import conversation_recorder
from orgmem.api.conversation_routes import router as conversations_router
from orgmem.api.errors import install_error_handlers
from orgmem.api.memtrim import trim as trim_memory
from orgmem.api.openapi_errors import install_error_responses
from orgmem.api.request_ids import RequestIdMiddleware
from orgmem.api.state import ServingState
from orgmem.config import Settings, get_settings
from orgmem.console import routes as console_routes
from orgmem.serving.config import ServeSettings
from orgmem.store import ObjectStore
from workers.queue import install_celery_queue

DESCRIPTION = """Each org's own model on a shared base, OpenAI-compatible.

* `/v1`: models, chat completions, completions (the official `openai` client works unchanged);
  `model` is the org slug (its pinned, else latest promoted, checkpoint) or `ORG@CHECKPOINT` (admin keys).
* `/v1/feedback`: rate a reply or correct it by its response id (corrections are reviewed before they train).
* `/api`: admin REST for what the `orgmem` CLI does (admin key of the org).
* `/healthz`, `/readyz`, `/metrics` (Prometheus).

Authenticate with `Authorization: Bearer <key>` (`orgmem keys create ORG --role employee|admin`).
"""


def _install_metrics_middleware(app: FastAPI, state: ServingState) -> None:
    @app.middleware("http")
    async def _observe(request: Request, call_next):
        t0 = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = getattr(request.scope.get("route"), "path", "unmatched")
            state.metrics.requests.labels(method=request.method, route=route, status=str(status)).inc()
            state.metrics.latency.labels(route=route).observe(time.perf_counter() - t0)


def create_app(settings: Settings | None = None, serve: ServeSettings | None = None, *, base=None,
               store: ObjectStore | None = None, engine_in_caller: bool = False) -> FastAPI:
    """The app; ``base`` (a loaded ``BaseModel``) skips loading, ``store`` overrides the configured one,
    ``engine_in_caller``: the caller decodes (``app.state.serving.run_engine_here``), see ``orgmem serve``."""
    install_celery_queue()  # the /api job routes queue for the workers
    state = ServingState(settings or get_settings(), serve or ServeSettings(), base=base, store=store,
                         engine_in_caller=engine_in_caller)
    state.turn_listeners.append(conversation_recorder(state))  # opt-in per org (docs/conversations.md)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.start()
        try:
            yield
        finally:
            state.stop()

    app = FastAPI(title="orgmem", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.serving = state
    state.turn_listeners.append(feedback_routes.reply_listener(state))  # replies feedback can name
    install_error_handlers(app)
    # added first, so it runs inside the metrics middleware (its 413s are counted) and before any route
    app.add_middleware(BodySizeLimit, max_bytes=state.serve.max_body_bytes,
                       trim_after_bytes=state.serve.trim_after_body_bytes, on_large_body=trim_memory)
    install_error_responses(app)
    _install_metrics_middleware(app, state)
    app.add_middleware(RequestIdMiddleware)  # added last: outermost of the user middleware
    for module in (openai_routes, responses_routes, feedback_routes, admin_routes, admin_jobs,
                   admin_corrections, accountability_routes, ops_routes):
        app.include_router(module.router)
    app.include_router(conversations_router)  # /v1/conversations (own turns) and /api/.../conversations
    app.include_router(console_routes.router)  # the admin console's pages under /console
    return app
