"""A FastAPI host that mounts the showcase example at /admin.

Run (after `reflex-buildd build examples/showcase`):
    uvicorn examples.hosts.fastapi_host:app
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI

from reflex_buildd_client import mount

PROJECT = Path(
    os.environ.get("SHOWCASE_PROJECT", Path(__file__).resolve().parent.parent / "showcase")
)
MOUNT_PATH = os.environ.get("SHOWCASE_MOUNT_PATH", "/admin")

events: list[str] = []


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The host's own lifespan: it must still run beside Reflex's."""
    events.append("host startup")
    yield
    events.append("host shutdown")


app = FastAPI(lifespan=lifespan)


@app.get("/health")
async def health() -> dict[str, object]:
    """A route of the host's own, beside the mount."""
    return {"ok": True, "events": events}


async def host_file(name: str) -> dict[str, str]:
    """The host's own /assets and /static: the mount's assets live under its prefix."""
    return {"host": "host-file", "name": name}


if MOUNT_PATH.strip("/"):
    # Under a root mount these paths belong to the app (its /assets/...).
    app.add_api_route("/assets/{name}", host_file)
    app.add_api_route("/static/{name}", host_file)

mount(app, MOUNT_PATH, project=PROJECT)


@app.api_route("/{path:path}", methods=["GET", "POST"], status_code=404)
async def catch_all(path: str) -> dict[str, str]:
    """The host's catch-all; routes match in order, so it comes after mount()."""
    return {"host": "catch-all", "path": path}
