"""Mount a prebuilt Reflex app on a path of a host ASGI app.

:class:`ReflexMount` is a plain ASGI app: at startup it keys the project,
opens the artifact for that key (failing with the command that builds it if
the cache has none), loads the Reflex backend and starts its lifespan. Then a
request below the prefix goes to the backend when it names one of the
backend's routes (``/_event``, ``/_upload``, ``/ping``, ...) and to the static
site of its prefix otherwise.

:func:`mount` wires it into a Starlette or FastAPI app: a ``Mount`` route and
the host's lifespan wrapped so that Reflex's starts first and stops last.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from .backend import ReflexBackend, load_backend
from .errors import ArtifactMissingError, ReflexBuilddError
from .prefix import normalize_mount_path, prefix_of, relative_path
from .project import Project, find_project
from .sources import compute_key
from .static import ArtifactFiles, StaticSite
from .store import Artifact, Cache
from .types import Receive, Scope, Send

__all__ = ["ReflexMount", "mount"]

logger = logging.getLogger("reflex_buildd")

# Prefixes come from the host's root_path (its own configuration), so few
# exist; the bound keeps memory flat even if a host is misconfigured.
_MAX_PREFIXES = 32


class ReflexMount:
    """An ASGI app serving a prebuilt Reflex project under any prefix.

    Args:
        project: The Reflex project directory (holding ``rxconfig.py``).
        cache_dir: The cache to find artifacts in (default: ``REFLEX_BUILDD_CACHE_DIR``
            or the per-user cache).
        backend_url: Where the frontend reaches the backend, if not at the
            page's own origin and prefix (e.g. ``https://api.example.com/admin``).
    """

    def __init__(
        self,
        project: str | os.PathLike[str],
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        backend_url: str = "",
    ) -> None:
        self._project_path = project
        self._cache = Cache(cache_dir)
        self._backend_url = backend_url
        self.project: Project | None = None
        self.artifact: Artifact | None = None
        self._files: ArtifactFiles | None = None
        self._backend: ReflexBackend | None = None
        self._sites: OrderedDict[str, StaticSite] = OrderedDict()
        self.timings: dict[str, float] = {}

    # -- startup -----------------------------------------------------------

    def open_artifact(self) -> Artifact:
        """Key the project and open its artifact (the client's own startup work).

        Raises:
            ArtifactMissingError: If the cache has no artifact for the key.
        """
        started = time.perf_counter()
        self.project = find_project(self._project_path)
        key, _inputs = compute_key(self.project)
        self.timings["key"] = time.perf_counter() - started
        artifact = self._cache.open(key)
        if artifact is None:
            raise ArtifactMissingError(
                f"no build of {self.project.root} for its current sources (key {key}) "
                f"in {self._cache.root}; build it with: "
                f"reflex-buildd build {self.project.root} --cache-dir {self._cache.root}",
                key=key,
            )
        self.artifact = artifact
        self._files = ArtifactFiles(artifact)
        self.timings["open"] = time.perf_counter() - started
        return artifact

    async def startup(self) -> None:
        """Open the artifact, load the Reflex backend and start its lifespan."""
        artifact = self.open_artifact()
        assert self.project is not None
        logger.info("reflex-buildd: serving %s from %s", self.project.root, artifact.path)
        backend = load_backend(self.project, artifact)
        await backend.acquire()
        self._backend = backend

    async def shutdown(self) -> None:
        """Stop the Reflex lifespan (its event processor and tasks)."""
        if self._backend is not None:
            backend, self._backend = self._backend, None
            await backend.release()

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Startup and shutdown as an async context manager, for hosts that compose lifespans."""
        await self.startup()
        try:
            yield
        finally:
            await self.shutdown()

    # -- serving -----------------------------------------------------------

    def site(self, prefix: str, backend_url: str | None = None) -> StaticSite:
        """The static site of ``prefix``, prepared on first use."""
        if self._files is None:
            raise ReflexBuilddError("ReflexMount is not started")
        backend = self._backend_url if backend_url is None else backend_url
        cache_key = f"{prefix}\x00{backend}"
        site = self._sites.get(cache_key)
        if site is None:
            site = StaticSite(self._files, prefix, backend)
            self._sites[cache_key] = site
            if len(self._sites) > _MAX_PREFIXES:
                self._sites.popitem(last=False)
        else:
            self._sites.move_to_end(cache_key)
        return site

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._serve_lifespan(receive, send)
            return
        if self._backend is None:
            await _plain(send, 503, b"Reflex app is not started (is the host's lifespan on?)\n")
            return
        path = relative_path(scope)
        if scope["type"] == "websocket" or self._backend.owns(path):
            # The backend runs as if at the root: its routes and socket.io
            # paths are the ones it was configured with.
            child = dict(scope)
            child["root_path"] = ""
            child["path"] = path or "/"
            child["raw_path"] = (path or "/").encode("utf-8")
            await self._backend.asgi(child, receive, send)
            return
        if scope["type"] != "http":
            return
        await self.site(prefix_of(scope))(scope, receive, send, path)

    async def _serve_lifespan(self, receive: Receive, send: Send) -> None:
        # For hosts that do forward lifespan to raw ASGI apps.
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    raise
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _plain(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def mount(
    host_app: Any,
    path: str,
    *,
    project: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None = None,
    backend_url: str = "",
) -> ReflexMount:
    """Mount a Reflex project on ``path`` of a Starlette or FastAPI app.

    The host's lifespan is wrapped, not replaced: Reflex's lifespan starts
    before the host's and stops after it. A root mount (``"/"``) matches every
    path, so register it after the host's own routes.

    Returns:
        The mounted :class:`ReflexMount`.
    """
    from starlette.routing import Mount

    mount_path = normalize_mount_path(path)
    reflex_mount = ReflexMount(project, cache_dir=cache_dir, backend_url=backend_url)
    host_app.router.routes.append(Mount(mount_path, app=reflex_mount))
    original = host_app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with reflex_mount.lifespan():
            async with original(app) as state:
                yield state

    host_app.router.lifespan_context = lifespan
    return reflex_mount
