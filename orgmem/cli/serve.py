"""``orgmem serve``: the OpenAI-compatible API and the admin REST API (issue #6).

Serves every org on one base model: ``/v1`` (chat, completions, models), ``/api`` (admin),
``/healthz``, ``/readyz``, ``/metrics``. Tuning comes from ``ORGMEM_SERVE_*`` variables
(``orgmem.serving.config.ServeSettings``); ``--host``/``--port`` override them.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

HostOption = Annotated[str | None, typer.Option("--host", help="Interface (default: 127.0.0.1).")]
PortOption = Annotated[int | None, typer.Option("--port", help="Port (default: 8000).")]
CacheOption = Annotated[int | None, typer.Option("--cache-size", help="Org memories kept loaded (LRU).")]
OpenApiFlag = Annotated[bool, typer.Option("--openapi", help="Print the OpenAPI spec as JSON and exit.")]


def command(host: HostOption = None, port: PortOption = None, cache_size: CacheOption = None,
            openapi: OpenApiFlag = False) -> None:
    """Serve the orgs' models (OpenAI-compatible) and the admin API."""
    import uvicorn

    from orgmem.app import create_app
    from orgmem.cli.common import settings
    from orgmem.db.migrate import require_current
    from orgmem.serving.config import ServeSettings

    given = {"host": host, "port": port, "cache_size": cache_size}
    overrides: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    serve = ServeSettings(**overrides)
    if openapi:
        typer.echo(json.dumps(create_app(settings(), serve).openapi(), indent=2))
        return
    require_current(settings().database_url)
    typer.echo(f"orgmem serving base {settings().base_model!r} on http://{serve.host}:{serve.port} "
               f"(OpenAI API at /v1, admin at /api, docs at /docs)", err=True)
    app = create_app(settings(), serve, engine_in_caller=True)
    config = uvicorn.Config(app, host=serve.host, port=serve.port, log_level="info")
    run_with_engine_on_main_thread(app, config)


def run_with_engine_on_main_thread(app, config) -> None:
    """HTTP on a helper thread, decoding on this (main) thread: decode steps measured 1.4-1.7x slower
    on a secondary thread, most likely because a second OpenMP pool was alive (memories now build
    single-threaded, ``orgmem.serving.threads``; see ``GenerationEngine.run_here``). Ctrl-C or SIGTERM stops
    both; so does the HTTP server ending on its own (e.g. its port was taken)."""
    import signal
    import threading

    import uvicorn

    server = uvicorn.Server(config)
    http = threading.Thread(target=server.run, name="orgmem-http", daemon=True)

    def on_sigterm(_signum, _frame):  # uvicorn only handles signals on the main thread: forward them
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    http.start()
    try:
        app.state.serving.run_engine_here(should_stop=lambda: not http.is_alive())
    except KeyboardInterrupt:
        pass
    finally:
        server.should_exit = True
        http.join(30)
        signal.signal(signal.SIGTERM, previous)
