"""A FastAPI host that mounts ``MOUNT_PROJECT`` at ``/admin`` and its metrics at ``/metrics``.

The metrics are mounted beside the app, not under its prefix: each worker
counts, and a scrape of any worker reports all of them.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from reflex_buildd_client import metrics_app, mount

app = FastAPI()


@app.get("/health")
async def health() -> dict[str, bool]:
    """The host's own route."""
    return {"ok": True}


app.mount("/metrics", metrics_app())
mount(app, "/admin", project=os.environ["MOUNT_PROJECT"])
