"""One FastAPI host, two Reflex projects: the showcase at /admin (in this
process) and tests/fixtures/second_app at /reports (its own backend process).

Reflex keeps one app per process, so at most one of them can be in-process.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI

from reflex_buildd_client import mount

SHOWCASE = Path(__file__).resolve().parents[2] / "examples" / "showcase"

app = FastAPI()


@app.get("/health")
async def health() -> dict[str, bool]:
    """The host's own route."""
    return {"ok": True}


# The mount added last starts first: here the in-process app loads (and sets
# Reflex's run-time variables in this process) before the second project is
# keyed, which must still find the key its build published.
mount(
    app,
    "/reports",
    project=os.environ["SECOND_PROJECT"],
    cache_dir=os.environ["SECOND_CACHE_DIR"],
    backend="process",
)
mount(app, "/admin", project=SHOWCASE)
