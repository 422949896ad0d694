"""Mount a prebuilt Reflex app on a path of a host ASGI app.

:class:`ReflexMount` is a plain ASGI app: at startup it keys the project,
opens the artifact for that key (failing with the command that builds it if
the cache has none), starts the Reflex backend (in this process, or in a
child process: ``backend="process"``) and its lifespan. Then a request below
the prefix goes to the backend when the backend's own router takes it
(``/_event``, ``/_upload``, ``/ping``, its API routes, ...) and to the static
site of its prefix otherwise.

:func:`mount` wires it into a Starlette or FastAPI app: a ``Mount`` route and
the host's lifespan wrapped so that Reflex's starts first and stops last.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack
from urllib.parse import quote

from .backend.bounds import Bounds
from .backend.choice import Backend, BackendUnavailableError, open_backend
from .backend.lifespan import failure_line, serve_lifespan
from .backend.slot import SlotClaim, check_slot, claim_slot
from .cache.lease import Lease
from .cache.store import Artifact, Cache
from .dev.declared import declare_mount, declare_path
from .errors import InvalidPathError, ReflexBuilddError
from .hostlog import show_logs
from .inputs.sources import compute_key
from .keys.schema import KeyInputs
from .project import Project, find_project
from .serve.files import ArtifactFiles
from .serve.http import (
    Response,
    plain_response,
    request_of,
    send_plain,
    send_plain_any,
    send_response,
)
from .serve.prefix import is_safe_path, normalize_mount_path, relative_path, resolve_location
from .serve.redirect import SlashRedirect
from .serve.static import StaticSite
from .settings import Overrides, Settings, StartupPolicy
from .startup.checkout import checkout
from .startup.demand import Demand
from .startup.wait import explain_daemon_mismatch
from .types import Receive, Scope, Send

if TYPE_CHECKING:
    from .dev.proxy import DevProxy
    from .startup.builder import Builder

__all__ = ["MountOptions", "ReflexMount", "mount"]

logger = logging.getLogger("reflex_buildd")

# How long a host's shutdown waits for a backend start still running.
_START_GRACE = 30.0
# Prefixes come from the host's root_path and from trusted proxies, so few
# exist; the bound keeps memory flat even if a proxy passes hostile values on.
_MAX_PREFIXES = 32


class MountOptions(Overrides, total=False):
    """The keyword arguments of :class:`ReflexMount` (and :func:`mount`): the settings it
    may override (:class:`~reflex_buildd_client.settings.Overrides`, one definition), plus
    ``settings`` and ``builder``."""

    settings: Settings | None
    builder: Builder | None


class ReflexMount:
    """An ASGI app serving a prebuilt Reflex project under any prefix.

    Args:
        project: The Reflex project directory (holding ``rxconfig.py``).
        settings: All settings at once (default: from ``REFLEX_BUILDD_*``);
            the keyword arguments below override single ones.
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
        builder: What builds on a miss under policy ``build`` (default: the
            builder installed with reflex-buildd, loaded only when needed).
        backend: Where the Reflex backend runs: ``"inprocess"`` (default) in
            this process, or ``"process"``: Reflex's own backend in a child
            process in the project directory, as under ``reflex run``
            (default: ``REFLEX_BUILDD_BACKEND``).
        backend_workers: How many backend processes serve the project in
            process mode: a number, or ``"auto"`` for the machine's cores
            (default: ``REFLEX_BUILDD_BACKEND_WORKERS``, else 1). More than
            one needs the app's state in Redis.

    Raises:
        InvalidConfigError: If a setting is malformed.
    """

    def __init__(
        self,
        project: str | os.PathLike[str],
        *,
        settings: Settings | None = None,
        builder: Builder | None = None,
        **overrides: Unpack[Overrides],
    ) -> None:
        self._project_path = project
        declare_mount(self, project)  # `reflex-buildd dev` asks which mounts a host made
        # PathDispatcher(backend=...) sets the mode of mounts that chose none.
        self.backend_explicit = overrides.get("backend") is not None
        # One Settings for this mount (its entry point), validated now, so a typo fails at
        # import, not at the first request; everything below is handed this one.
        self.settings = (settings or Settings.load()).override(**overrides)
        self._cache = Cache(self.settings.cache_dir)
        self._proxy = self.settings.proxy
        self._backend_url = self._proxy.backend_url
        self._builder = builder
        self.project: Project | None = None
        self.artifact: Artifact | None = None
        self._files: ArtifactFiles | None = None
        self._backend: Backend | None = None
        self._starting: asyncio.Task[None] | None = None
        self._backend_error: Exception | None = None
        self._lease: Lease | None = None
        self._sites: OrderedDict[tuple[str, str], StaticSite] = OrderedDict()
        self.timings: dict[str, float] = {}
        # Set when `reflex-buildd dev` runs this project: then nothing comes
        # from the cache and every request goes to its dev servers.
        self._dev: DevProxy | None = None
        # Where mount() put it (for errors); None for raw-ASGI hosts' own routing.
        self.where: str | None = None
        # Reflex keeps one app per process: the first in-process mount made owns it.
        self._slot = _claim_slot(self, project)

    # -- startup -----------------------------------------------------------

    def open_artifact(self) -> Artifact:
        """Key the project and get its artifact: wait, build or fail per the policy.

        One pass, one direction: key -> obtain (wait, build or fail) -> lease
        -> read every file once, verified -> prepare. This blocks (polling);
        :meth:`startup` runs it in a thread.

        The artifact is leased for this process until :meth:`shutdown` (gc
        never removes it meanwhile; a read-only cache serves without a lease);
        a corrupt one is quarantined, then rebuilt or waited for (policy
        ``build``/``wait``).

        Raises:
            ArtifactMissingError: Policy ``fail`` and no artifact.
            BuildFailedError: The build for the key failed (here or elsewhere).
            CorruptArtifactError: The artifact is corrupt and the policy is ``fail``.
            ReadOnlyCacheError: No artifact, and the cache is read-only here.
            WaitTimeoutError: No artifact within the timeout.
        """
        started = time.perf_counter()
        settings = self.settings
        project = self.project = find_project(self._project_path, app_name=settings.app_name)
        key, inputs = compute_key(project, settings=settings)
        self.timings["key"] = time.perf_counter() - started
        done = checkout(self._demand(project, key, inputs))
        if (previous := self._lease) is not None:  # opened again: one lease at a time
            previous.release()
        self._lease = done.lease
        self.timings["verify"] = done.verify_seconds
        self.artifact = done.artifact
        self._files = _artifact_files(done.artifact, done.contents)
        self.timings["open"] = time.perf_counter() - started
        return done.artifact

    def _demand(self, project: Project, key: str, inputs: KeyInputs) -> Demand:
        """What this mount asks of startup, by its settings' policy."""
        settings, cache = self.settings, self._cache
        policy = settings.policy
        build = None
        if policy is StartupPolicy.BUILD:
            builder = self._builder
            build = functools.partial(
                _build, builder, project, cache, key=key, inputs=inputs, settings=settings
            )
        return Demand(
            cache,
            key,
            policy=policy,
            timeout=settings.timeout,
            build=build,
            explain_missing=functools.partial(
                explain_daemon_mismatch, cache, project.root, key, inputs
            ),
            remote=_remote_lookup(cache, key, settings),
            give_up=_daemon_grace(cache, project, settings),
            project=project.root,
        )

    async def startup(self) -> None:
        """Get the artifact, then start the Reflex backend and its lifespan.

        With ``backend_start="background"`` (the default) this returns once
        the artifact is open, so the host accepts requests while Reflex
        imports the app (the larger part of a host's start): static files
        answer at once, backend requests wait for the backend. With
        ``"startup"`` it returns when the backend runs, and fails with it.

        Under ``reflex-buildd dev`` (``REFLEX_BUILDD_DEV`` names this project)
        it starts the proxy to the dev servers instead, and nothing else.
        """
        show_logs()  # a build or a wait at startup says what it does
        if (target := self.settings.dev) is not None:
            # Imported only under `reflex-buildd dev`: production never pays for it.
            from .dev.proxy import start_dev_proxy

            self._dev = await start_dev_proxy(target, self._project_path)
            if self._dev is not None:
                return
        if self.settings.backend == "inprocess":
            check_slot(self._slot)  # before anything is opened: a host that cannot work stops
        artifact = await asyncio.to_thread(self.open_artifact)
        assert self.project is not None
        logger.info("reflex-buildd: serving %s from %s", self.project.root, artifact.path)
        if self.settings.backend_start == "startup":
            try:
                await self._start_backend(artifact)
            except BaseException:
                await self.shutdown()  # ends the lease: this process serves nothing
                raise
            return
        self._starting = asyncio.create_task(
            self._start_backend_logged(artifact), name="reflex-buildd backend start"
        )

    async def _start_backend(self, artifact: Artifact) -> None:
        assert self.project is not None
        # Importing the app is synchronous and long: off the event loop, so
        # the static side keeps answering meanwhile. The lifespan runs on it.
        bounds = Bounds(response=self.settings.backend_timeout)
        backend = await asyncio.to_thread(
            open_backend, self.settings, self.project, artifact, self._cache, bounds
        )
        await backend.acquire()
        self._backend = backend

    async def _start_backend_logged(self, artifact: Artifact) -> None:
        started = time.perf_counter()
        try:
            await self._start_backend(artifact)
        except Exception as exc:
            self._backend_error = exc
            logger.exception(
                "reflex-buildd: the Reflex backend of %s failed to start; its requests "
                "answer 503 until the host restarts",
                self.project.root if self.project else self._project_path,
            )
            return
        self.timings["backend"] = time.perf_counter() - started

    @property
    def backend_state(self) -> str:
        """``running``, ``starting``, ``failed`` or ``stopped``: for a host's readiness route."""
        if self._backend is not None or self._dev is not None:  # dev: Reflex's dev backend
            return "running"
        if self._backend_error is not None:
            return "failed"
        if self._starting is not None and not self._starting.done():
            return "starting"
        return "stopped"

    async def ready(self) -> bool:
        """Wait for a background start of the backend; whether it runs."""
        return await self._ready_backend() is not None

    async def _ready_backend(self) -> Backend | None:
        """The backend, waiting for a background start; None if it failed to start."""
        if self._backend is None and self._starting is not None:
            await asyncio.shield(self._starting)
        return self._backend

    async def shutdown(self) -> None:
        """Stop the Reflex lifespan (its event processor and tasks), then end the lease."""
        if (dev := self._dev) is not None:
            self._dev = None
            await dev.close()
        try:
            if (starting := self._starting) is not None:
                self._starting = None
                # A start still running finishes first, so its lifespan is stopped too.
                await asyncio.wait({starting}, timeout=_START_GRACE)
                starting.cancel()
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
        if self._dev is not None:
            await self._dev(scope, receive, send)
            return
        if self._files is None:
            await send_plain_any(
                scope, send, 503, b"Reflex app is not started (is the host's lifespan on?)\n"
            )
            return
        path = relative_path(scope)
        if scope["type"] == "http" and not is_safe_path(path):
            # Before the backend too: its routes (/_upload/...) see the same paths.
            await send_plain(send, 400, b"Bad request path\n")
            return
        backend = self._backend
        if backend is None:
            if scope["type"] == "http" and self._files.serves(path):
                # A file or page of the artifact: no backend route shadows one of its own files.
                await self._serve_static(scope, receive, send, path)
                return
            backend = await self._ready_backend()
            if backend is None:
                # A websocket too gets the 503 the log promises, not the server's 500.
                await send_plain_any(
                    scope, send, 503, b"The Reflex backend failed to start (see the log)\n"
                )
                return
        owned = scope["type"] == "websocket" or backend.owns(path, scope["method"])
        if owned is None:  # process mode, a path not seen yet: ask its router
            try:
                owned = await backend.ask(path, scope["method"])
            except BackendUnavailableError:
                # Bounded: a stuck child never holds a request (logged once per incident).
                await send_plain(send, 503, b"The Reflex backend is not answering (retry)\n")
                return
        if owned:
            # The backend runs as if at the root: its routes and socket.io
            # paths are the ones it was configured with.
            child = dict(scope)
            child["root_path"] = ""
            child["path"] = path or "/"
            # raw_path is what the client sent: percent-encoded again.
            child["raw_path"] = quote(path or "/", safe="/:@!$&'()*+,;=-._~").encode("ascii")
            await backend.asgi(child, receive, send)
            return
        if scope["type"] == "http":
            await self._serve_static(scope, receive, send, path)

    async def _serve_static(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        await send_response(send, self.respond(scope, path))

    def respond(self, scope: Scope, path: str) -> Response:
        """The static response to an HTTP ``scope`` for ``path`` below the prefix; no I/O.

        ``path`` has passed :func:`is_safe_path`. The prefix rule picks the
        prepared site; the site decides.
        """
        try:
            location = resolve_location(scope, self._proxy)
        except InvalidPathError:
            # A malformed forwarded header or root_path: never a prefix. The
            # value is not echoed (it may be hostile).
            return _BAD_FORWARDED
        return self.site(location.prefix, location.backend).respond(request_of(scope, path))


_BAD_FORWARDED = plain_response(400, b"Bad forwarded prefix, proto or host\n")


# One artifact's files are read once per process, however many paths it is
# mounted at: only the rewritten files cost memory per prefix.
_files_by_artifact: dict[tuple[str, float], ArtifactFiles] = {}


def _claim_slot(reflex_mount: ReflexMount, project: str | os.PathLike[str]) -> SlotClaim:
    # Weak: a mount nobody holds any more stands in no line.
    ref = weakref.ref(reflex_mount)

    def describe() -> str:
        found = ref()
        where = f" at {found.where}" if found is not None and found.where else ""
        return f"the mount of {os.fspath(project)}{where}"

    def wants() -> bool:
        found = ref()
        if found is None or found.settings.backend != "inprocess":
            return False
        dev = found.settings.dev  # reflex-buildd dev serves it: no Reflex app here
        return dev is None or dev.project.resolve() != Path(project).expanduser().resolve()

    return claim_slot(project, describe, wants)


def _artifact_files(artifact: Artifact, contents: Mapping[str, bytes]) -> ArtifactFiles:
    # The manifest's creation time tells a rebuilt artifact (same key, after a
    # quarantine) from the one held in memory.
    key = (str(artifact.path), artifact.manifest.created)
    if (files := _files_by_artifact.get(key)) is None:
        files = _files_by_artifact[key] = ArtifactFiles(artifact, contents)
    return files


# The helpers below import what only a miss, a remote tier or a wait needs
# when it is needed: a host starting on a hit (the common case) skips those
# modules (the remote client, the daemon's grace, the builder's entry points;
# the dev proxy in startup()): importing is most of what the mount still adds
# to a host's start on a hit (docs/benchmarks.md).


def _build(
    builder: Builder | None,
    project: Project,
    cache: Cache,
    *,
    key: str,
    inputs: KeyInputs,
    settings: Settings,
) -> Artifact:
    if builder is None:
        from .startup.builder import default_builder

        builder = default_builder()
    return builder(project, cache, key=key, inputs=inputs, settings=settings)


def _remote_lookup(
    cache: Cache, key: str, settings: Settings
) -> Callable[[float | None], Artifact | None] | None:
    """The remote tier (``REFLEX_BUILDD_REMOTE``), asked on a local miss; hosts only read."""
    if settings.remote_tier is None:
        return None
    from .remote.pull import remote_lookup

    return remote_lookup(cache, key, settings.remote_tier)


def _daemon_grace(
    cache: Cache, project: Project, settings: Settings
) -> Callable[[], str | None] | None:
    """Under policy ``wait``: gives up a wait that no daemon serves."""
    if settings.policy is not StartupPolicy.WAIT:
        return None
    from .startup.nodaemon import DaemonGrace

    return DaemonGrace(cache, project.root, grace=settings.daemon_grace)


def mount(
    host_app: Any,
    path: str,
    *,
    project: str | os.PathLike[str],
    middleware: Sequence[Any] | None = None,
    **options: Unpack[MountOptions],
) -> ReflexMount:
    """Mount a Reflex project on ``path`` of a Starlette or FastAPI app.

    ``middleware`` (Starlette ``Middleware`` entries) wraps only the mount,
    e.g. to require a login for ``/admin``: it sees page, asset, websocket
    and upload requests alike.

    The host's lifespan is wrapped, not replaced: Reflex's lifespan starts
    before the host's and stops after it. A root mount (``"/"``) matches every
    path, so register it after the host's own routes. The other keyword
    arguments (``settings``, ``cache_dir``, ``policy``, ...) are those of
    :class:`ReflexMount`.

    Returns:
        The mounted :class:`ReflexMount`.
    """
    from starlette.routing import Mount, Route

    mount_path = normalize_mount_path(path)
    reflex_mount = ReflexMount(project, **options)
    reflex_mount.where = mount_path or "/"
    if mount_path:
        # "/admin" itself: Starlette's slash redirect only fires when no route
        # matches, and a host catch-all would match first.
        redirect = SlashRedirect(mount_path, reflex_mount._proxy)
        host_app.router.routes.append(Route(mount_path, redirect, methods=["GET", "HEAD"]))
    host_app.router.routes.append(Mount(mount_path, app=reflex_mount, middleware=middleware))
    declare_path(reflex_mount, mount_path)
    original = host_app.router.lifespan_context
    failed: list[ReflexBuilddError] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        try:
            await reflex_mount.startup()
        except ReflexBuilddError as exc:
            failed.append(exc)  # the server prints it as one line (below)
            raise
        try:
            async with original(app) as state:
                yield state
        finally:
            await reflex_mount.shutdown()

    host_app.router.lifespan_context = lifespan
    _report_failures_in_one_line(host_app.router, failed, mount_path)
    return reflex_mount


def _report_failures_in_one_line(
    router: Any, failed: list[ReflexBuilddError], mount_path: str
) -> None:
    """Make the server print a startup error of the mount as one line, not a traceback.

    Starlette's router answers a lifespan that raised with
    ``lifespan.startup.failed`` carrying ``traceback.format_exc()``, then
    raises again; uvicorn logs that message as is, granian the message and
    then the exception's traceback: about 30 lines of routing, mount and
    wait frames around one fact (a missing project, a failed build). Our
    errors are written to be read alone, so for them the message becomes that
    fact and the protocol ends there (the server still stops with "startup
    failed"); any other exception (the host's own lifespan) keeps Starlette's
    traceback.
    """
    protocol = router.lifespan

    async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
        reported: list[BaseException] = []

        async def send_short(message: dict[str, Any]) -> None:
            if message["type"] == "lifespan.startup.failed" and failed:
                reported.append(error := failed.pop())
                where = f"the Reflex app mounted at {mount_path or '/'}"
                message = {**message, "message": failure_line(error, where)}
            await send(message)

        try:
            await protocol(scope, receive, send_short)
        except ReflexBuilddError as exc:
            # Starlette raises again after reporting; the ASGI spec lets the
            # app return instead, and granian would print the traceback.
            if exc not in reported:
                raise

    router.lifespan = lifespan
