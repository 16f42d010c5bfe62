"""``/healthz`` (the process answers), ``/readyz`` (it can serve: base loaded, database and store
reachable) and ``/metrics`` (Prometheus text). None needs a key: probes and scrapers have none."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from orgmem.api.auth import get_state
from orgmem.api.request_ids import request_id_of

logger = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])

_PROBE_KEY = "orgmem-readyz-probe"


@router.get("/healthz", summary="Liveness")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _check(name: str, fn, request_id: str) -> tuple[str, str | None]:
    """``/readyz`` needs no key: a failure says which part, its exception only goes to the log."""
    try:
        fn()
        return name, None
    except Exception as exc:
        logger.warning("readiness check failed: %s: %s", type(exc).__name__, exc,
                       extra={"check": name, "request_id": request_id})
        return name, f"unreachable; the server log has the details under request id {request_id}"


@router.get("/readyz", summary="Readiness: base loaded, engine running, database and store reachable",
            responses={503: {"description": "Not ready: the same body, naming the failing check",
                             "content": {"application/json": {"schema": {"type": "object"}}}}})
def readyz(request: Request) -> JSONResponse:
    state = get_state(request)
    request_id = request_id_of(request)
    checks: dict[str, Any] = dict([
        _check("database", state.check_database, request_id),
        _check("store", lambda: state.store.exists(_PROBE_KEY), request_id),
    ])
    if state.load_error is not None:
        checks["model"] = "failed to load; the server log has the details"
    elif not state.ready:
        checks["model"] = "loading"
    else:
        checks["model"] = None
    ok = all(v is None for v in checks.values())
    body = {"status": "ready" if ok else "not ready",
            "checks": {k: ("ok" if v is None else v) for k, v in checks.items()},
            "base": state.redact(state.base.name if state.base is not None else state.settings.base_model),
            "loaded_memories": len(state.cache)}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", summary="Prometheus metrics",
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
def metrics(request: Request) -> Response:
    return Response(get_state(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)
