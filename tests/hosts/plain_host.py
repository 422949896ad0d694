"""Plain Reflex mounted the obvious way: ``Mount("/admin", rx_app())``.

This is what users try today (Reflex issue #6239) and what reflex-buildd
exists to fix; tests/test_plain_reflex.py shows it failing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

PROJECT = Path(os.environ["PLAIN_PROJECT"])
os.chdir(PROJECT)  # Reflex finds rxconfig.py through the working directory
sys.path.insert(0, str(PROJECT))

from showcase.showcase import app as rx_app  # noqa: E402


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


app = Starlette(routes=[Route("/health", health), Mount("/admin", rx_app())])
