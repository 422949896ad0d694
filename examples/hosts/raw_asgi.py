"""The showcase as a bare ASGI application: ``ReflexMount`` needs no host.

``uvicorn examples.hosts.raw_asgi:app`` serves it at the root; with
``--root-path /admin`` behind a proxy that strips /admin, at /admin. The
server's lifespan protocol reaches ``ReflexMount`` directly.
"""

from __future__ import annotations

import os
from pathlib import Path

from reflex_buildd_client import ReflexMount

PROJECT = Path(
    os.environ.get("SHOWCASE_PROJECT", Path(__file__).resolve().parent.parent / "showcase")
)

app = ReflexMount(PROJECT)
