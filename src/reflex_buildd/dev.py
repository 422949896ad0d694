"""``reflex-buildd dev``: the host app with its Reflex app in Reflex's dev loop.

One command instead of ``reflex run`` while working on a mounted app::

    reflex-buildd dev PROJECT --app host:app --path /admin

It runs two things and stops both together:

- **the Reflex side** (:mod:`reflex_buildd.devserver`, a child process in its
  own process group, working directory the project, as ``reflex run``): the
  Vite dev server with the prefix as its ``base`` and Reflex's reloading dev
  backend, both on 127.0.0.1 ports of their own. ``.web`` and the session's
  ``reflex.lock/`` live in the cache's dev workspace, never in the project
  and never among the artifacts.
- **the host** (in this process, with uvicorn): the host's own routes,
  middleware and lifespan, unchanged. ``REFLEX_BUILDD_DEV`` tells the mount of
  PROJECT where the dev servers are; that mount then forwards to them
  (:mod:`reflex_buildd_client.dev.proxy`) instead of serving an artifact.
  Mounts of other projects serve their verified artifacts as always.

The host itself is not reloaded: a save in the project reloads Reflex's
backend (and, through its compile, updates the open page over Vite's HMR)
while the host's routes keep answering. Only one dev session per project and
cache runs at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from reflex_buildd_client.cache.store import Cache
from reflex_buildd_client.children import dies_with_parent
from reflex_buildd_client.dev.proxy import active_proxies
from reflex_buildd_client.dev.target import DEV_ENV, DevTarget
from reflex_buildd_client.errors import ReflexBuilddError
from reflex_buildd_client.inputs.runtime import resolve_runtime
from reflex_buildd_client.project import Project, project_id
from reflex_buildd_client.settings import Settings

from .devchecks import check_mounts, check_port, import_host

__all__ = ["DevAlreadyRunningError", "DevOptions", "DevServerError", "child_env", "run_dev"]

PLUGIN = "reflex_buildd.devplugin.DevPlugin"
# Seconds the Reflex side may take to come up: the first run installs the
# frontend packages (bun: about 6 s here; npm several times that).
DEFAULT_STARTUP_TIMEOUT = 600.0


class DevAlreadyRunningError(ReflexBuilddError, RuntimeError):
    """Another ``reflex-buildd dev`` already runs this project with this cache."""


class DevServerError(ReflexBuilddError, RuntimeError):
    """The Reflex side of the dev session exited or never came up."""


@dataclass(frozen=True)
class DevOptions:
    """What ``reflex-buildd dev`` runs.

    Attributes:
        app: The host ASGI app as an import string, ``module:attribute``.
        prefix: The path the host mounts the project at (normalized: ``""`` or ``"/admin"``).
        host: The interface the host listens on.
        port: The host's port.
        app_dir: Put on ``sys.path`` to import ``app`` (as uvicorn's ``--app-dir``).
        access_log: Log every request the host serves (off: Vite's module
            requests would flood the terminal).
        startup_timeout: Seconds the Reflex side may take to come up.
        settings: The command's settings (the JS runtime, the environment the dev servers get).
    """

    app: str
    prefix: str
    host: str = "127.0.0.1"
    port: int = 8000
    app_dir: Path = Path()
    access_log: bool = False
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT
    settings: Settings = field(kw_only=True)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Stopped(Exception):
    """Ctrl-C or SIGTERM: the end of a session, not an error."""


def _raise_stopped(signum: int, _frame: object) -> None:
    raise _Stopped(signum)


def _require_dev_extras() -> None:
    import importlib.util

    missing = [m for m in ("uvicorn", "websockets") if importlib.util.find_spec(m) is None]
    if missing:
        # Not `pip install 'reflex-buildd[dev]'`: that needs the package on an
        # index; these two names work wherever reflex-buildd came from.
        raise ReflexBuilddError(
            f"reflex-buildd dev needs {' and '.join(missing)}: pip install uvicorn websockets"
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(target: DevTarget, web_dir: Path, settings: Settings) -> dict[str, str]:
    """The environment of the Reflex side: our ``.web``, the prefix, the plugin, bun.

    ``REFLEX_BUILDD_DEV`` goes along: the dev plugin writes the backend's
    routes where it says.
    """
    env = dict(settings.environ)
    env.update(resolve_runtime(settings=settings).env)
    env[DEV_ENV] = target.to_env()
    # A host's skip-compile flag would stop every reload from updating .web.
    env.pop("__REFLEX_SKIP_COMPILE", None)
    extra = [p for p in env.get("REFLEX_EXTRA_PLUGINS", "").split(",") if p.strip()]
    env.update(
        {
            "REFLEX_WEB_WORKDIR": str(web_dir),
            "REFLEX_EXTRA_PLUGINS": ",".join([*extra, PLUGIN]),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if target.prefix:
        env["REFLEX_FRONTEND_PATH"] = target.prefix
    else:
        env.pop("REFLEX_FRONTEND_PATH", None)
    return env


def _seed_lockfiles(project: Project, directory: Path) -> Path:
    """The session's ``reflex.lock/``: a fresh copy of the project's pins, if it has any."""
    shutil.rmtree(directory, ignore_errors=True)
    pins = project.root / "reflex.lock"
    if pins.is_dir():
        shutil.copytree(pins, directory)
    return directory


def _spawn(
    project: Project, target: DevTarget, web_dir: Path, settings: Settings
) -> subprocess.Popen[bytes]:
    frontend_port = int(target.frontend.rsplit(":", 1)[1])
    backend_port = int(target.backend.rsplit(":", 1)[1])
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reflex_buildd.devserver",
            "--frontend-port",
            str(frontend_port),
            "--backend-port",
            str(backend_port),
        ],
        cwd=project.root,
        env=child_env(target, web_dir, settings),
        stdin=subprocess.DEVNULL,
        # Its own group: Ctrl-C reaches the host only, which then stops the
        # whole group (granian's workers, bun, Vite) in one go.
        start_new_session=True,
        preexec_fn=dies_with_parent(signal.SIGTERM),
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    # Whatever is left of the group (a reloader's worker, Vite under bun).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


async def _listening(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _say(message: str) -> None:
    print(f"reflex-buildd dev: {message}", file=sys.stderr, flush=True)


async def _supervise(
    child: subprocess.Popen[bytes],
    target: DevTarget,
    server: Any,
    options: DevOptions,
    project: Project,
) -> int:
    """Wait for the Reflex side, say where to look, then stop the host if it dies."""
    ports = [int(url.rsplit(":", 1)[1]) for url in (target.frontend, target.backend)]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + options.startup_timeout
    while not (server.started and all([await _listening(p) for p in ports])):
        if child.poll() is not None:
            _say(f"the Reflex dev server exited with {child.returncode} (see above); stopping")
            server.should_exit = True
            return 1
        if loop.time() > deadline:
            _say(f"the Reflex dev server did not come up in {options.startup_timeout:.0f}s")
            server.should_exit = True
            return 1
        await asyncio.sleep(0.1)
    shown_host = "127.0.0.1" if options.host in ("0.0.0.0", "::") else options.host
    url = f"http://{shown_host}:{options.port}{target.prefix}/"
    if not any(p.target.project == target.project for p in active_proxies()):
        # The mount exists (checked before starting) but its lifespan did not
        # run: the URL would serve nothing of the project.
        _say(
            f"no mount of {project.root} in {options.app} switched to dev mode: the host "
            "must run the mount's lifespan (see docs/howto-dev.md); stopping"
        )
        server.should_exit = True
        return 2
    _say(f"{project.root.name} at {url}  (host app {options.app}; Ctrl-C stops both)")
    while child.poll() is None:
        await asyncio.sleep(0.25)
    _say(f"the Reflex dev server exited with {child.returncode} (see above); stopping")
    server.should_exit = True
    return 1


async def _run(
    child: subprocess.Popen[bytes],
    target: DevTarget,
    options: DevOptions,
    project: Project,
    host_app: Any,
) -> int:
    import uvicorn

    config = uvicorn.Config(
        host_app,
        host=options.host,
        port=options.port,
        access_log=options.access_log,
        # Reflex's socket.io and Vite's HMR client reconnect through the proxy
        # on every backend reload; at "info" each try would print two lines.
        log_level="info" if options.access_log else "warning",
        # The websocket implementation uvicorn picks must speak subprotocols
        # (Vite's HMR socket asks for "vite-hmr"); both of its own do.
        ws="auto",
    )
    server = uvicorn.Server(config)
    watcher = asyncio.create_task(_supervise(child, target, server, options, project))
    try:
        await server.serve()
    except SystemExit:
        # uvicorn exits (code 3) when the app cannot be imported or its
        # lifespan startup fails; it has logged why.
        _say(f"the host app {options.app} did not start (see above); stopping")
        return 1
    finally:
        if not watcher.done():
            watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        return await watcher
    return 0


def _import_checked(options: DevOptions, project: Project, target: DevTarget) -> Any:
    """Import the host app in dev mode, before anything starts; check it mounts PROJECT.

    Raises:
        DevSetupError: If it cannot be imported, or does not mount the project at ``--path``.
    """
    app_dir = str(options.app_dir.absolute())
    if app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    # Set before the import: each mount reads its settings when it is created.
    os.environ[DEV_ENV] = target.to_env()
    try:
        host_app = import_host(options.app)
        check_mounts(options.app, project.root, options.prefix)
    except BaseException:
        os.environ.pop(DEV_ENV, None)
        raise
    return host_app


def run_dev(project: Project, cache: Cache, options: DevOptions) -> int:
    """Run the dev session until the host stops (Ctrl-C, SIGTERM) or the Reflex side dies.

    Returns:
        The exit code: 0 when stopped, 1 when the host did not start or the
        Reflex side failed, 2 when the mount of the project never started
        (the host did not run its lifespan).

    Raises:
        DevAlreadyRunningError: If another dev session runs this project.
        PortInUseError: If the host's port is taken.
        DevSetupError: If the host cannot be imported or does not mount the
            project at ``--path``.
        ReflexBuilddError: If uvicorn or websockets is not installed.
    """
    _require_dev_extras()
    check_port(options.host, options.port)  # not after Reflex compiled the app
    pid = project_id(project.root)
    cache.dev_dir(pid).mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(cache.dev_lock_path(pid)))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise DevAlreadyRunningError(
            f"another reflex-buildd dev already runs {project.root} with cache {cache.root}"
        ) from None
    try:
        routes = cache.dev_routes_path(pid)
        routes.unlink(missing_ok=True)  # a previous session's list is not this app's
        target = DevTarget(
            project=project.root,
            prefix=options.prefix,
            frontend=f"http://127.0.0.1:{_free_port()}",
            backend=f"http://127.0.0.1:{_free_port()}",
            routes_file=routes,
            lockfiles_dir=_seed_lockfiles(project, cache.dev_lockfiles_dir(pid)),
        )
        host_app = _import_checked(options, project, target)
        _say(
            f"starting Reflex's dev servers for {project.root}: Vite (base {target.prefix}/) "
            f"on {target.frontend}, backend on {target.backend} (behind the host, not to open)"
        )
        child = _spawn(project, target, cache.dev_web_dir(pid), options.settings)
        # uvicorn stops gracefully on SIGINT/SIGTERM, then raises the signal
        # again for the handler it found; with ours, that ends the session
        # here (Reflex side stopped below) instead of killing the process
        # (SIGTERM's default) or printing a KeyboardInterrupt.
        previous = {sig: signal.signal(sig, _raise_stopped) for sig in _STOP_SIGNALS}
        try:
            return asyncio.run(_run(child, target, options, project, host_app))
        except _Stopped:
            return 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            _stop(child)
            os.environ.pop(DEV_ENV, None)
    finally:
        lock.release()
