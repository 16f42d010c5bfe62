"""The console's router: pages, actions, and its two static files, all under ``/console``."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from orgmem.console import actions, feedback, pages
from orgmem.console.render import HERE
from orgmem.errors import ApiError

#: The only files served from ``static/`` (a fixed list: nothing else on disk is reachable).
STATIC = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}

router = APIRouter(include_in_schema=False)
router.include_router(pages.router)
router.include_router(actions.router)
router.include_router(feedback.router)


@router.get("/console/static/{name}")
def static(name: str) -> Response:
    if name not in STATIC:
        raise ApiError(404, f"no console file {name!r}", "not_found_error", "not_found")
    return Response((HERE / "static" / name).read_bytes(), media_type=STATIC[name],
                    headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"})
