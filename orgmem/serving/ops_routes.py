"""``/healthz`` (the process answers), ``/readyz`` (it can serve: base loaded, database and store
reachable) and ``/metrics`` (Prometheus text). None needs a key: probes and scrapers have none."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from orgmem.serving.auth import get_state

router = APIRouter(tags=["operations"])

_PROBE_KEY = "orgmem-readyz-probe"


@router.get("/healthz", summary="Liveness")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _check(name: str, fn) -> tuple[str, str | None]:
    try:
        fn()
        return name, None
    except Exception as exc:
        return name, f"{type(exc).__name__}: {exc}"


@router.get("/readyz", summary="Readiness: base loaded, engine running, database and store reachable")
def readyz(request: Request) -> JSONResponse:
    state = get_state(request)
    checks: dict[str, Any] = dict([
        _check("database", state.check_database),
        _check("store", lambda: state.store.exists(_PROBE_KEY)),
    ])
    if state.load_error is not None:
        checks["model"] = f"failed to load: {state.load_error}"
    elif not state.ready:
        checks["model"] = "loading"
    else:
        checks["model"] = None
    ok = all(v is None for v in checks.values())
    body = {"status": "ready" if ok else "not ready",
            "checks": {k: ("ok" if v is None else v) for k, v in checks.items()},
            "base": state.base.name if state.base is not None else state.settings.base_model,
            "loaded_memories": len(state.cache)}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", summary="Prometheus metrics")
def metrics(request: Request) -> Response:
    return Response(get_state(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)
