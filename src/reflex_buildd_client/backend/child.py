"""The backend child of process mode: Reflex's own backend, in the project.

``python -m reflex_buildd_client.backend.child --fd N`` runs with the project
as its working directory and serves the app on the listening Unix socket it
inherits as descriptor ``N`` (bound by the parent in its checked runtime
directory, :mod:`.rundir`; ``SOCKET`` instead of ``--fd N`` binds a path),
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

When the parent runs several children (``backend_workers`` > 1) it sets
:data:`SHARED_STATE_ENV`: the child then refuses to serve (exit status
:data:`SHARED_STATE_REFUSED`, one line on stderr) unless the app's state
manager is Redis, the one several processes can share, decided as Reflex's
``StateManager.create`` decides it; and, as ``reflex run`` does, unless its
transport is the websocket (a polling session would hop between children).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
from typing import Any
from urllib.parse import parse_qs

from ..types import ASGIApp, Receive, Scope, Send
from .routes import BackendRoutes

__all__ = [
    "FORGET_PATH",
    "INSTANCE_ENV",
    "OWNS_PATH",
    "PARENT_ENV",
    "SECRET_ENV",
    "SECRET_HEADER",
    "SHARED_STATE_ENV",
    "SHARED_STATE_REFUSED",
    "main",
    "shared_state_problem",
]

OWNS_PATH = "/.reflex-buildd/owns"
# POST {"instance": ...}: drop a dead child's session records (:mod:`.sessions`).
FORGET_PATH = "/.reflex-buildd/forget"
# Between the host and its child only (not settings: nobody sets them by hand).
SECRET_ENV = "_REFLEX_BUILDD_CHILD_SECRET"
SECRET_HEADER = b"x-reflex-buildd-secret"
PARENT_ENV = "_REFLEX_BUILDD_CHILD_PARENT"
SHARED_STATE_ENV = "_REFLEX_BUILDD_CHILD_SHARED_STATE"
INSTANCE_ENV = "_REFLEX_BUILDD_CHILD_INSTANCE"
# EX_CONFIG (sysexits.h): the parent turns it into its one-line error.
SHARED_STATE_REFUSED = 78


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
            and scope["path"] in (OWNS_PATH, FORGET_PATH)
            and secret
            and dict(scope["headers"]).get(SECRET_HEADER) == secret
        ):
            answer: Any
            if scope["path"] == FORGET_PATH:
                from .sessions import forget_instance

                asked = await _json_body(receive)
                answer = await forget_instance(str(asked.get("instance", "")))
            elif scope["method"] == "POST":
                # Many at once: {"method": "GET", "paths": [...]} -> {"owns": [...]}.
                asked = await _json_body(receive)
                method = str(asked.get("method", "GET"))
                answer = [routes.owns(str(p), method) for p in asked.get("paths", [])]
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


def shared_state_problem() -> str | None:
    """Why this app's state cannot be shared by several processes (None: it can).

    Reflex's own rule (``StateManager.create``): ``redis_url`` (or
    ``REFLEX_REDIS_URL``) selects Redis unless ``state_manager_mode`` is set
    explicitly; the default is the disk manager, private to one process.
    """
    from reflex.utils import prerequisites
    from reflex_base import constants
    from reflex_base.config import get_config

    config = get_config()
    mode = config.state_manager_mode
    explicit = "state_manager_mode" in getattr(config, "_non_default_attributes", ())
    if not explicit and prerequisites.parse_redis_url() is not None:
        mode = constants.StateManagerMode.REDIS
    if mode != constants.StateManagerMode.REDIS:
        return f"its state manager is {mode.value}, not redis"
    if getattr(config, "transport", "websocket") == "polling":
        return "its transport is polling (a session would hop between processes)"
    return None


def main(argv: list[str] | None = None) -> None:
    """Serve the project's backend on the socket given in ``argv`` (``--fd N`` or a path)."""
    args = sys.argv[1:] if argv is None else argv
    where: dict[str, Any] = {"fd": int(args[1])} if args[0] == "--fd" else {"uds": args[0]}
    parent = int(os.environ.pop(PARENT_ENV, "0") or 0)
    if parent and os.getppid() != parent:
        sys.exit(1)  # the host died before the parent-death signal was armed
    secret = os.environ.pop(SECRET_ENV, "").encode()
    shared = bool(os.environ.pop(SHARED_STATE_ENV, ""))

    import uvicorn

    factory = _reflex_app()
    if shared and (problem := shared_state_problem()) is not None:
        print(
            f"reflex-buildd: several backend processes of {os.getcwd()} need Redis state: "
            f"{problem} (set REFLEX_REDIS_URL, or backend_workers=1)",
            file=sys.stderr,
        )
        sys.exit(SHARED_STATE_REFUSED)
    instance = os.environ.pop(INSTANCE_ENV, "")
    if shared:
        from .sessions import adopt_instance, forget_instance

        adopt_instance(instance)
        # This slot's previous child is dead: its records are stale. Best effort:
        # with Redis down the app reports its own errors, as under `reflex run`.
        try:
            asyncio.run(forget_instance(instance))
        except Exception as exc:
            print(f"reflex-buildd: could not clear stale sessions: {exc}", file=sys.stderr)
    asgi = factory()
    app = _owns_endpoint(asgi, BackendRoutes(asgi), secret)
    config = uvicorn.Config(
        app,
        **where,
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
