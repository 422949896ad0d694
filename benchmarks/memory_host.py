"""A FastAPI host mounting the showcase at each path of ``MOUNT_PATHS`` (comma-separated;
empty: no mount at all, the baseline). Used by bench_memory.py and bench_build.py."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI

app = FastAPI()


@app.get("/health")
async def health() -> dict[str, bool]:
    return {"ok": True}


_paths = [p for p in os.environ.get("MOUNT_PATHS", "").split(",") if p]
if _paths:
    from reflex_buildd_client import mount

    project = Path(__file__).resolve().parent.parent / "examples" / "showcase"
    for path in _paths:
        mount(app, path, project=project)
