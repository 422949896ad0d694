"""A Starlette host that mounts the showcase example at /admin.

Run: ``uvicorn examples.hosts.starlette_host:app`` (the artifact is built at
startup if missing; see docs/howto-starlette-fastapi.md).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from reflex_buildd_client import mount

PROJECT = Path(
    os.environ.get("SHOWCASE_PROJECT", Path(__file__).resolve().parent.parent / "showcase")
)

events: list[str] = []


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """The host's own lifespan: it still runs, inside Reflex's."""
    events.append("host startup")
    yield
    events.append("host shutdown")


async def health(request: Request) -> JSONResponse:
    """A route of the host's own, beside the mount."""
    return JSONResponse({"ok": True, "events": events})


async def host_file(request: Request) -> JSONResponse:
    """The host's own /assets and /static: the mount's live under its prefix."""
    return JSONResponse(
        {"host": request.url.path.split("/")[1], "name": request.path_params["name"]}
    )


async def catch_all(request: Request) -> JSONResponse:
    """The host's catch-all: routes are matched in order, so it must come after
    the mount (mount() appends, so register catch-alls after calling it)."""
    return JSONResponse({"host": "catch-all", "path": request.url.path}, status_code=404)


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/assets/{name}", host_file),
        Route("/static/{name}", host_file),
    ],
    lifespan=lifespan,
)
mount(app, "/admin", project=PROJECT)
app.router.routes.append(Route("/{path:path}", catch_all))
