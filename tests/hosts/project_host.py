"""A FastAPI host that mounts the project in ``MOUNT_PROJECT`` at ``MOUNT_PATH``.

``REFLEX_BUILDD_BACKEND`` picks the backend mode. The host's own
``/favicon.ico`` answers 404, so a request that escapes the prefix shows in
the browser's console.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from reflex_buildd_client import mount

app = FastAPI()


@app.get("/health")
async def health() -> dict[str, bool]:
    """The host's own route."""
    return {"ok": True}


mount(app, os.environ.get("MOUNT_PATH", "/admin"), project=os.environ["MOUNT_PROJECT"])


@app.get("/favicon.ico")
async def host_favicon() -> PlainTextResponse:
    """The host has no icon: a request here escaped the mount."""
    return PlainTextResponse("escaped the prefix", status_code=404)
