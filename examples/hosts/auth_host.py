"""A Starlette host whose own middleware requires a login for the mounted app.

The middleware wraps only the mount (``mount(..., middleware=[...])``), so it
sees every request under /admin: pages, assets, the event websocket, uploads.
Here a login is a ``session=letmein`` cookie; real hosts use their session or
authentication middleware the same way.
"""

from __future__ import annotations

import os
from http.cookies import SimpleCookie
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from reflex_buildd_client import mount

PROJECT = Path(
    os.environ.get("SHOWCASE_PROJECT", Path(__file__).resolve().parent.parent / "showcase")
)


class RequireLogin:
    """Refuse HTTP (401) and websocket (close before accept) requests without a session."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        cookies = SimpleCookie()
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                cookies.load(value.decode("latin-1"))
        session = cookies.get("session")
        if session is not None and session.value == "letmein":
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            await PlainTextResponse("login required", status_code=401)(scope, receive, send)


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


app = Starlette(routes=[Route("/health", health)])
mount(app, "/admin", project=PROJECT, middleware=[Middleware(RequireLogin)])
