"""Plain-ASGI glue for hosts that are not Starlette.

- :class:`PathDispatcher` sits in front of a host application that knows
  nothing of mounts or lifespan (Django's ``get_asgi_application()``): it
  sends requests under each mount path to its app with Starlette's mount
  semantics (``root_path`` extended, ``path`` kept whole), everything else to
  the host, and answers the lifespan protocol itself, starting every mounted
  app (and, if asked, the host's own lifespan) and stopping them in reverse.
- :func:`restore_mount_path` wraps a mounted app for hosts that strip the
  mount path from ``path`` without setting ``root_path`` (Litestar's
  ``@asgi(..., is_mount=True)``): it rebuilds both from ``raw_path``.
- :func:`isolate_scope` wraps a whole host app that rewrites the server's
  scope in place (Litestar's router sets a mount's stripped ``path`` on it),
  so the server's access log keeps the path the client asked for.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from urllib.parse import unquote

from .backend.lifespan import LifespanDriver, serve_lifespan
from .dev.declared import declare_path
from .mount import ReflexMount
from .serve.prefix import normalize_mount_path
from .types import ASGIApp, Receive, Scope, Send

__all__ = ["PathDispatcher", "isolate_scope", "restore_mount_path"]


class PathDispatcher:
    """Route by path prefix to mounted apps; drive their lifespans.

    Args:
        default: The host application (receives every path not mounted).
        mounts: Mount path -> ASGI app (a :class:`ReflexMount`, or any ASGI app
            whose lifespan should run with the dispatcher's).
        host_lifespan: Also forward the lifespan protocol to ``default``
            (False for Django, whose handler rejects lifespan scopes).
        backend: The backend mode (``"inprocess"`` / ``"process"``) of every
            :class:`ReflexMount` in ``mounts`` created without one.
    """

    def __init__(
        self,
        default: ASGIApp,
        mounts: Mapping[str, ASGIApp],
        *,
        host_lifespan: bool = False,
        backend: str | None = None,
    ) -> None:
        self.default = default
        # Longest path first, so /a/b wins over /a.
        self.mounts = sorted(
            ((normalize_mount_path(path), app) for path, app in mounts.items()),
            key=lambda item: len(item[0]),
            reverse=True,
        )
        self.host_lifespan = host_lifespan
        for path, app in self.mounts:
            declare_path(app, path)
            if backend is not None and isinstance(app, ReflexMount) and not app.backend_explicit:
                app.settings = app.settings.override(backend=backend)

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Start every mounted app (then the host if asked); stop in reverse order."""
        async with contextlib.AsyncExitStack() as stack:
            for _path, app in reversed(self.mounts):
                if isinstance(app, ReflexMount):
                    await stack.enter_async_context(app.lifespan())
                else:
                    await stack.enter_async_context(_driven(app))
            if self.host_lifespan:
                await stack.enter_async_context(_driven(self.default))
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(self.lifespan(), receive, send)
            return
        root = str(scope.get("root_path", "")).rstrip("/")
        path = str(scope.get("path", ""))
        below = path[len(root) :] if root and path.startswith(root) else path
        for mount_path, app in self.mounts:
            if below == mount_path or below.startswith(mount_path + "/") or not mount_path:
                child = dict(scope)
                child["root_path"] = root + mount_path
                child["path"] = root + below
                await app(child, receive, send)
                return
        await self.default(scope, receive, send)


@contextlib.asynccontextmanager
async def _driven(app: ASGIApp) -> AsyncIterator[None]:
    driver = LifespanDriver(app)
    await driver.startup()
    try:
        yield
    finally:
        await driver.shutdown()


def restore_mount_path(app: ASGIApp, mount_path: str) -> ASGIApp:
    """Give ``app`` Starlette's mount semantics from ``raw_path``.

    Litestar hands a mounted ASGI app ``path`` with the mount path removed
    (and a trailing slash added) and no ``root_path``; the prefix rule needs
    both. ``raw_path`` still holds what the client sent.
    """
    prefix = normalize_mount_path(mount_path)
    declare_path(app, prefix)

    async def restored(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and scope.get("raw_path"):
            raw = bytes(scope["raw_path"]).split(b"?", 1)[0].decode("latin-1")
            root = str(scope.get("root_path", "")).rstrip("/")
            full = unquote(raw)
            if not full.startswith(root + prefix):
                full = root + full
            scope = {**scope, "root_path": root + prefix, "path": full}
        await app(scope, receive, send)

    return restored


def isolate_scope(app: ASGIApp) -> ASGIApp:
    """Hand ``app`` a copy of each connection's scope.

    uvicorn's access log reads ``path`` from the scope it made, after the app
    ran; Litestar's router replaces that ``path`` with a mount's stripped one
    (``/assets/x.js/`` for ``/admin/assets/x.js``). Given a copy, the app
    rewrites its own, and the log shows the full path. Lifespan passes
    through unchanged (its scope holds the shared ``state``).
    """

    async def isolated(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = dict(scope)
        await app(scope, receive, send)

    return isolated
