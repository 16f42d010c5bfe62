"""``orgmem serve``: the OpenAI-compatible API and the admin REST API (issue #6).

Serves every org on one base model: ``/v1`` (chat, completions, models), ``/api`` (admin),
``/healthz``, ``/readyz``, ``/metrics``. Tuning comes from ``ORGMEM_SERVE_*`` variables
(``orgmem.serving.config.ServeSettings``); ``--host``/``--port`` override them.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

HostOption = Annotated[str | None, typer.Option("--host", help="Interface (default: 127.0.0.1).")]
PortOption = Annotated[int | None, typer.Option("--port", help="Port (default: 8000).")]
CacheOption = Annotated[int | None, typer.Option("--cache-size", help="Org memories kept loaded (LRU).")]
OpenApiFlag = Annotated[bool, typer.Option("--openapi", help="Print the OpenAPI spec as JSON and exit.")]


def command(host: HostOption = None, port: PortOption = None, cache_size: CacheOption = None,
            openapi: OpenApiFlag = False) -> None:
    """Serve the orgs' models (OpenAI-compatible) and the admin API."""
    import uvicorn

    from orgmem.cli.common import settings
    from orgmem.db.migrate import require_current
    from orgmem.serving.app import create_app
    from orgmem.serving.config import ServeSettings

    given = {"host": host, "port": port, "cache_size": cache_size}
    overrides = {k: v for k, v in given.items() if v is not None}
    serve = ServeSettings(**overrides)
    if openapi:
        typer.echo(json.dumps(create_app(settings(), serve).openapi(), indent=2))
        return
    require_current(settings().database_url)
    typer.echo(f"orgmem serving base {settings().base_model!r} on http://{serve.host}:{serve.port} "
               f"(OpenAI API at /v1, admin at /api, docs at /docs)", err=True)
    uvicorn.run(create_app(settings(), serve), host=serve.host, port=serve.port, log_level="info")
