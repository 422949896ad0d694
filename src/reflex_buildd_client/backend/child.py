"""The backend child of process mode: Reflex's own backend, in the project.

``python -m reflex_buildd_client.backend.child SOCKET`` runs with the project
as its working directory and serves the app on the Unix socket ``SOCKET``,
configured as ``reflex run --env prod --backend-only`` configures it:
``REFLEX_ENV_MODE=prod``, ``REFLEX_BACKEND_ONLY``, compilation skipped, the
app built by its own factory (``App.__call__``) from ``rxconfig.py`` found in
the working directory. The build markers (``upload_is_used``, stateful pages)
come through ``REFLEX_WEB_WORKDIR``, which the parent sets to a private copy
of the artifact's (:mod:`.webdir`), never to the artifact itself.

The parent's supervisor (:mod:`.process`) sets a parent-death signal
before exec, so this process never outlives the host. It also asks, over the
same socket, which paths the app routes (:data:`OWNS_PATH`, answered only with
the secret the parent passed in the environment); the app never sees those
requests.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from typing import Any
from urllib.parse import parse_qs

from ..types import ASGIApp, Receive, Scope, Send
from .routes import BackendRoutes

__all__ = ["OWNS_PATH", "SECRET_ENV", "SECRET_HEADER", "main"]

OWNS_PATH = "/.reflex-buildd/owns"
# Between the host and its child only (not settings: nobody sets them by hand).
SECRET_ENV = "_REFLEX_BUILDD_CHILD_SECRET"
SECRET_HEADER = b"x-reflex-buildd-secret"
PARENT_ENV = "_REFLEX_BUILDD_CHILD_PARENT"


async def _json_body(receive: Receive) -> Any:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return json.loads(b"".join(chunks) or b"{}")


def _owns_endpoint(app: ASGIApp, routes: BackendRoutes, secret: bytes) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == OWNS_PATH
            and secret
            and dict(scope["headers"]).get(SECRET_HEADER) == secret
        ):
            if scope["method"] == "POST":
                # Many at once: {"method": "GET", "paths": [...]} -> {"owns": [...]}.
                asked = await _json_body(receive)
                method = str(asked.get("method", "GET"))
                answer: Any = [routes.owns(str(p), method) for p in asked.get("paths", [])]
            else:
                query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
                answer = routes.owns(query.get("path", [""])[0], query.get("method", ["GET"])[0])
            body = json.dumps({"owns": answer}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return wrapped


def _reflex_app() -> Any:
    # What `reflex run --env prod --backend-only` sets before it starts the server.
    os.environ["REFLEX_ENV_MODE"] = "prod"
    os.environ["REFLEX_BACKEND_ONLY"] = "true"
    os.environ["__REFLEX_SKIP_COMPILE"] = "true"
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    from reflex_base.config import get_config

    module = importlib.import_module(get_config().module)
    return module.app


def main(argv: list[str] | None = None) -> None:
    """Serve the project's backend on the socket named in ``argv``."""
    args = sys.argv[1:] if argv is None else argv
    socket_path = args[0]
    parent = int(os.environ.pop(PARENT_ENV, "0") or 0)
    if parent and os.getppid() != parent:
        sys.exit(1)  # the host died before the parent-death signal was armed
    secret = os.environ.pop(SECRET_ENV, "").encode()

    import uvicorn

    asgi = _reflex_app()()
    app = _owns_endpoint(asgi, BackendRoutes(asgi), secret)
    config = uvicorn.Config(
        app,
        uds=socket_path,
        lifespan="on",
        # Only the host reaches this socket (its directory is private): its
        # X-Forwarded-For/Proto are the client's address and scheme.
        proxy_headers=True,
        forwarded_allow_ips="*",
        # Reflex's own production default; the app's own logging is untouched.
        log_level="warning",
        ws_max_size=2**26,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
