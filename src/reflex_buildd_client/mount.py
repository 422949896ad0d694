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

import asyncio
import contextlib
import logging
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .backend import ReflexBackend, load_backend, serve_lifespan
from .diff import diff_inputs
from .errors import InvalidPathError, ReflexBuilddError
from .keys import KeyInputs
from .lease import Lease
from .prefix import (
    is_safe_path,
    normalize_mount_path,
    proxy_config,
    relative_path,
    resolve_location,
)
from .project import Project, find_project
from .sources import compute_key
from .static import ArtifactFiles, StaticSite
from .status import read_daemon
from .store import Artifact, Cache
from .types import Receive, Scope, Send
from .wait import DEFAULT_TIMEOUT, StartupPolicy, obtain, policy_from_env

__all__ = ["ReflexMount", "mount"]

logger = logging.getLogger("reflex_buildd")

# Prefixes come from the host's root_path and from trusted proxies, so few
# exist; the bound keeps memory flat even if a proxy passes hostile values on.
_MAX_PREFIXES = 32


class ReflexMount:
    """An ASGI app serving a prebuilt Reflex project under any prefix.

    Args:
        project: The Reflex project directory (holding ``rxconfig.py``).
        cache_dir: The cache to find artifacts in (default: ``REFLEX_BUILDD_CACHE_DIR``
            or the per-user cache).
        backend_url: Where the frontend reaches the backend, if not at the
            page's own origin and prefix (e.g. ``https://api.example.com/admin``).
        trusted_proxies: IPs/CIDRs whose ``X-Forwarded-Prefix/Proto/Host`` are
            honoured (default: ``REFLEX_BUILDD_TRUSTED_PROXIES``, else none).
        public_url: The mount's full external URL; overrides ``root_path`` and
            forwarded headers (default: ``REFLEX_BUILDD_PUBLIC_URL``).
        policy: What startup does when nobody is building the current key:
            ``build`` it here (default), ``wait`` for a daemon, or ``fail``
            (default: ``REFLEX_BUILDD_POLICY``).
        timeout: Seconds startup may wait for the artifact (default:
            ``REFLEX_BUILDD_TIMEOUT``, else 900).

    Raises:
        InvalidConfigError: If ``backend_url``, ``trusted_proxies`` or ``public_url``
            is malformed.
    """

    def __init__(
        self,
        project: str | os.PathLike[str],
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        backend_url: str = "",
        trusted_proxies: str | Iterable[str] | None = None,
        public_url: str | None = None,
        policy: StartupPolicy | str | None = None,
        timeout: float | None = None,
    ) -> None:
        self._project_path = project
        self._cache = Cache(cache_dir)
        # Startup settings (wait.py): resolved now so a typo fails at import.
        self._policy = StartupPolicy(policy) if policy is not None else policy_from_env()
        self._timeout = timeout if timeout is not None else _timeout_from_env()
        # The one prefix rule's settings (prefix.py), validated now, not per request.
        self._proxy = proxy_config(
            trusted_proxies=trusted_proxies, public_url=public_url, backend_url=backend_url
        )
        self._backend_url = self._proxy.backend_url
        self.project: Project | None = None
        self.artifact: Artifact | None = None
        self._files: ArtifactFiles | None = None
        self._backend: ReflexBackend | None = None
        self._lease: Lease | None = None
        self._sites: OrderedDict[tuple[str, str], StaticSite] = OrderedDict()
        self.timings: dict[str, float] = {}

    # -- startup -----------------------------------------------------------

    def open_artifact(self) -> Artifact:
        """Key the project and get its artifact: wait, build or fail per the policy.

        This blocks (polling); :meth:`startup` runs it in a thread.

        The artifact is leased for this process until :meth:`shutdown` (gc
        never removes it meanwhile) and its files are checked against the
        manifest the first time this process opens it; a corrupt one is
        quarantined, then rebuilt or waited for (policy ``build``/``wait``).

        Raises:
            ArtifactMissingError: Policy ``fail`` and no artifact.
            BuildFailedError: The build for the key failed (here or elsewhere).
            CorruptArtifactError: The artifact is corrupt and the policy is ``fail``.
            WaitTimeoutError: No artifact within the timeout.
        """
        from .checkout import checkout

        started = time.perf_counter()
        project = self.project = find_project(self._project_path)
        key, inputs = compute_key(project, cache_dir=self._cache.root)
        self.timings["key"] = time.perf_counter() - started

        def build() -> Artifact:
            from reflex_buildd.build import run_build  # the builder, only when needed

            return run_build(project, self._cache, key=key, inputs=inputs)

        def wait() -> Artifact:
            return obtain(
                self._cache,
                key,
                policy=self._policy,
                build=build,
                timeout=self._timeout,
                explain_missing=lambda: explain_daemon_mismatch(
                    self._cache, project.root, key, inputs
                ),
            )[0]

        done = checkout(self._cache, key, obtain=wait, policy=self._policy)
        if (previous := self._lease) is not None:  # opened again: one lease at a time
            previous.release()
        self._lease = done.lease
        artifact = done.artifact
        self.timings["verify"] = done.verify_seconds
        self.artifact = artifact
        self._files = _artifact_files(artifact)
        self.timings["open"] = time.perf_counter() - started
        return artifact

    async def startup(self) -> None:
        """Get the artifact, load the Reflex backend and start its lifespan."""
        artifact = await asyncio.to_thread(self.open_artifact)
        assert self.project is not None
        logger.info("reflex-buildd: serving %s from %s", self.project.root, artifact.path)
        try:
            backend = load_backend(self.project, artifact)
            await backend.acquire()
        except BaseException:
            await self.shutdown()  # ends the lease: this process serves nothing
            raise
        self._backend = backend

    async def shutdown(self) -> None:
        """Stop the Reflex lifespan (its event processor and tasks), then end the lease."""
        try:
            if self._backend is not None:
                backend, self._backend = self._backend, None
                await backend.release()
        finally:
            if (lease := self._lease) is not None:
                self._lease = None
                lease.release()

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
        """The static site of ``prefix`` (and backend URL), prepared on first use.

        At most ``_MAX_PREFIXES`` are kept (least recently used goes first):
        prefixes come from the host's configuration and from trusted proxies,
        and validated ones at that, but a trusted proxy passing through what
        clients send must still not grow memory without bound.
        """
        if self._files is None:
            raise ReflexBuilddError("ReflexMount is not started")
        backend = self._backend_url if backend_url is None else backend_url
        cache_key = (prefix, backend)
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
            # For hosts that do forward lifespan to raw ASGI apps.
            await serve_lifespan(self.lifespan(), receive, send)
            return
        if self._backend is None:
            await _plain(send, 503, b"Reflex app is not started (is the host's lifespan on?)\n")
            return
        path = relative_path(scope)
        if scope["type"] == "http" and not is_safe_path(path):
            # Before the backend too: its routes (/_upload/...) see the same paths.
            await _plain(send, 400, b"Bad request path\n")
            return
        if scope["type"] == "websocket" or self._backend.owns(path):
            # The backend runs as if at the root: its routes and socket.io
            # paths are the ones it was configured with.
            child = dict(scope)
            child["root_path"] = ""
            child["path"] = path or "/"
            # raw_path is what the client sent: percent-encoded again.
            child["raw_path"] = quote(path or "/", safe="/:@!$&'()*+,;=-._~").encode("ascii")
            await self._backend.asgi(child, receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            location = resolve_location(scope, self._proxy)
        except InvalidPathError:
            # A malformed forwarded header or root_path: never a prefix. The
            # value is not echoed (it may be hostile).
            await _plain(send, 400, b"Bad forwarded prefix, proto or host\n")
            return
        await self.site(location.prefix, location.backend)(scope, receive, send, path)


async def _plain(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# One artifact's files are read once per process, however many paths it is
# mounted at: only the rewritten files cost memory per prefix.
_files_by_artifact: dict[tuple[str, float], ArtifactFiles] = {}


def _artifact_files(artifact: Artifact) -> ArtifactFiles:
    # The manifest's creation time tells a rebuilt artifact (same key, after a
    # quarantine) from the one held in memory.
    key = (str(artifact.path), artifact.manifest.created)
    if (files := _files_by_artifact.get(key)) is None:
        files = _files_by_artifact[key] = ArtifactFiles(artifact)
    return files


def _timeout_from_env() -> float:
    value = os.environ.get("REFLEX_BUILDD_TIMEOUT", "").strip()
    try:
        return float(value) if value else DEFAULT_TIMEOUT
    except ValueError:
        raise ValueError(f"REFLEX_BUILDD_TIMEOUT={value!r} is not a number of seconds") from None


def explain_daemon_mismatch(cache: Cache, root: Path, key: str, inputs: KeyInputs) -> str:
    """Why the daemon of this project has not built ``key``: its key differs, and how."""
    daemon = read_daemon(cache, root)
    if daemon is None or daemon.alive is False:
        return "no daemon is watching this project (start one: reflex-buildd watch PROJECT)"
    if daemon.key == key:
        return f"the daemon (pid {daemon.pid}) is on this key ({daemon.state})"
    why = diff_inputs(KeyInputs.from_json(daemon.inputs), inputs).summary()
    return (
        f"the daemon (pid {daemon.pid} on {daemon.host}) has key {daemon.key}, this process "
        f"computes {key}: {why}"
    )


async def _add_slash(request: Any) -> Any:
    from starlette.responses import RedirectResponse

    url = request.url
    return RedirectResponse(url.replace(path=url.path + "/"), status_code=307)


def mount(
    host_app: Any,
    path: str,
    *,
    project: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None = None,
    backend_url: str = "",
    trusted_proxies: str | Iterable[str] | None = None,
    public_url: str | None = None,
    policy: StartupPolicy | str | None = None,
    timeout: float | None = None,
    middleware: Sequence[Any] | None = None,
) -> ReflexMount:
    """Mount a Reflex project on ``path`` of a Starlette or FastAPI app.

    ``middleware`` (Starlette ``Middleware`` entries) wraps only the mount,
    e.g. to require a login for ``/admin``: it sees page, asset, websocket
    and upload requests alike.

    The host's lifespan is wrapped, not replaced: Reflex's lifespan starts
    before the host's and stops after it. A root mount (``"/"``) matches every
    path, so register it after the host's own routes. Keyword arguments are
    those of :class:`ReflexMount`.

    Returns:
        The mounted :class:`ReflexMount`.
    """
    from starlette.routing import Mount, Route

    mount_path = normalize_mount_path(path)
    reflex_mount = ReflexMount(
        project,
        cache_dir=cache_dir,
        backend_url=backend_url,
        trusted_proxies=trusted_proxies,
        public_url=public_url,
        policy=policy,
        timeout=timeout,
    )
    if mount_path:
        # "/admin" itself: Starlette's slash redirect only fires when no route
        # matches, and a host catch-all would match first.
        host_app.router.routes.append(Route(mount_path, _add_slash, methods=["GET", "HEAD"]))
    host_app.router.routes.append(Mount(mount_path, app=reflex_mount, middleware=middleware))
    original = host_app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with reflex_mount.lifespan():
            async with original(app) as state:
                yield state

    host_app.router.lifespan_context = lifespan
    return reflex_mount
