"""A Litestar host that mounts the showcase example at /admin.

Litestar mounts raw ASGI apps with ``@asgi(path, is_mount=True)``; it strips
the mount path without setting ``root_path``, so the app is wrapped with
``restore_mount_path``. Reflex's lifespan joins the host's through Litestar's
``lifespan=`` list, and ``isolate_scope`` keeps the full path in the
server's access log. Run: ``uvicorn examples.hosts.litestar_host:app``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from litestar import Litestar, MediaType, Response, asgi, get
from litestar.types import Receive, Scope, Send

from reflex_buildd_client import ReflexMount, isolate_scope, restore_mount_path

PROJECT = Path(
    os.environ.get("SHOWCASE_PROJECT", Path(__file__).resolve().parent.parent / "showcase")
)

reflex_app = ReflexMount(PROJECT)
_admin = restore_mount_path(reflex_app, "/admin")
events: list[str] = []


@asgi("/admin", is_mount=True, copy_scope=True)
async def admin(scope: Scope, receive: Receive, send: Send) -> None:
    """Everything under /admin: pages, assets, websocket, upload."""
    await _admin(scope, receive, send)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def host_lifespan(app: Litestar) -> AsyncIterator[None]:
    """The host's own lifespan: it still runs beside Reflex's."""
    events.append("host startup")
    yield
    events.append("host shutdown")


@get("/health")
async def health() -> dict[str, object]:
    """A route of the host's own."""
    return {"ok": True, "events": events}


@get(["/assets/{name:str}", "/static/{name:str}"])
async def host_file(name: str) -> dict[str, str]:
    """The host's own /assets and /static."""
    return {"host": "host-file", "name": name}


@get("/{path:path}", media_type=MediaType.JSON)
async def catch_all(path: str) -> Response[dict[str, str]]:
    """The host's catch-all."""
    return Response({"host": "catch-all", "path": path}, status_code=404)


host = Litestar(
    route_handlers=[admin, health, host_file, catch_all],
    # Reflex's lifespan first: it starts before the host's and stops after it.
    lifespan=[lambda app: reflex_app.lifespan(), host_lifespan],
)
# Litestar rewrites the server's scope in place (a mount's path, stripped):
# a copy keeps the full path in uvicorn's access log.
app = isolate_scope(host)
