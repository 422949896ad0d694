"""Process mode: the project's Reflex backend in a child process, one per machine.

``mount(..., backend="process")`` keeps Reflex out of the host: the child
(:mod:`.child`) runs with the project as its working directory,
configured as ``reflex run --env prod --backend-only``, on a Unix socket; the
mount serves the static files itself and forwards the backend's requests
(:mod:`.forward`). So relative paths, the app's own config and its state
manager behave as under ``reflex run``, a crash of the app is not a crash of
the host, and several projects can share one host.

Supervision:

- the child starts with the host's lifespan (the first mount that needs it)
  and stops with it (SIGTERM, then SIGKILL after a grace period);
- it is restarted when it dies, with a growing pause if it keeps dying, and
  the host logs each death with its exit status;
- it never outlives the host: a parent-death signal (``PR_SET_PDEATHSIG``,
  SIGKILL) is armed before exec, and the child exits at once if the host is
  already gone;
- one child serves every worker of a host on one machine: the worker holding
  a lock next to the socket owns the child, the others forward to the same
  socket and take over (start a new child) when the owner goes away. A single
  backend process is what ``reflex run --backend-only`` with one worker is,
  so every state manager is safe with it (memory included); states survive a
  restart of the child with the disk (``.states/`` in the project) and Redis
  managers, and are lost with the memory manager, as on any restart.

The socket and lock live in a private per-user runtime directory (a Unix
socket path must stay short, and must be local to the machine), named by a
digest of the cache, the project and the artifact key: a new build starts a
new child, never reuses one with another build's markers.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import secrets
import signal
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import blake3

from .. import metrics
from ..cache.store import PUBLIC_DIR, Artifact, Cache
from ..children import dies_with_parent
from ..errors import ReflexBuilddError
from ..project import Project
from ..types import ASGIApp
from .bounds import Bounds
from .child import OWNS_PATH, PARENT_ENV, SECRET_ENV, SECRET_HEADER
from .forward import UnixForwarder
from .webdir import PrivateWebDir

__all__ = ["ProcessBackend", "runtime_dir"]

# Where an artifact's static files are (the store's name), as manifest paths start.
_PUBLIC = PUBLIC_DIR + "/"

logger = logging.getLogger("reflex_buildd")

_MAX_MEMO = 4096
_STOP_GRACE = 10.0
_READY_TIMEOUT = 120.0
_FOLLOW_INTERVAL = 0.5


def runtime_dir() -> Path:
    """A private, local, short directory for the backend sockets of this user."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    path = Path(base) / f"reflex-buildd-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    if path.stat().st_uid != os.getuid() or path.stat().st_mode & 0o077:
        raise ReflexBuilddError(f"{path} is not private to this user; refusing to use it")
    return path


class ProcessBackend:
    """The backend of one project in a child process, behind a Unix socket.

    Same face as the in-process backend: :meth:`acquire` / :meth:`release`
    around the host's lifespan, :meth:`owns` to route, :attr:`asgi` to serve.
    """

    def __init__(
        self, project: Project, artifact: Artifact, cache: Cache, bounds: Bounds | None = None
    ) -> None:
        _require_process_extras()
        self.bounds = bounds or Bounds()
        self.project = project
        self.artifact = artifact
        name = blake3.blake3(
            f"{cache.root.resolve()}\0{project.root}\0{artifact.key}".encode()
        ).hexdigest()[:20]
        directory = runtime_dir()
        self.socket_path = str(directory / f"{name}.sock")
        self._lock_path = directory / f"{name}.lock"
        # Shared by every worker that forwards to this socket, so any of them
        # can ask the child which paths it routes.
        self._secret_path = directory / f"{name}.secret"
        self._forwarder = UnixForwarder(self.socket_path, self.bounds)
        self._memo: dict[tuple[str, str], bool] = {}
        self._users = 0
        self._guard = asyncio.Lock()
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._lock_fd: int | None = None
        # The child's .web: a private copy of the markers, kept across its
        # restarts, removed when supervision ends (webdir.py says why).
        self._web = PrivateWebDir(artifact)
        self.child: asyncio.subprocess.Process | None = None
        self.restarts = 0
        # Whether a backend has answered on the socket since acquire().
        self._answered = False

    # -- the backend interface ------------------------------------------------

    async def acquire(self) -> None:
        """Start (or join) the child, and wait until it answers."""
        async with self._guard:
            if self._users == 0:
                self._stopping.clear()
                self._answered = False
                self._forwarder = UnixForwarder(self.socket_path, self.bounds)
                self._memo.clear()
                self._supervisor = asyncio.create_task(
                    self._supervise(), name="reflex-buildd backend child"
                )
                try:
                    await self._wait_ready(_READY_TIMEOUT)
                except BaseException:
                    await self._stop()
                    raise
                await self._prewarm()
            self._users += 1

    async def release(self) -> None:
        """Stop the child when the last mount using it stops."""
        async with self._guard:
            self._users -= 1
            if self._users == 0:
                await self._stop()

    def owns(self, path: str, method: str = "GET") -> bool | None:
        """Whether the backend routes this request; None: not known yet (:meth:`ask`)."""
        return self._memo.get((method, path))

    async def ask(self, path: str, method: str = "GET") -> bool:
        """Ask the child's router (once per path and method) whether it routes this."""
        target = OWNS_PATH + "?" + urlencode({"path": path, "method": method})
        try:
            status, body = await self._forwarder.request(
                "GET", target, [(SECRET_HEADER, self._secret())]
            )
        except Exception:
            return True  # the child is restarting: the forwarder answers 502
        if status != 200:
            return True
        owned = bool(json.loads(body)["owns"])
        if len(self._memo) >= _MAX_MEMO:
            self._memo.clear()
        self._memo[(method, path)] = owned
        return owned

    async def _prewarm(self) -> None:
        """Ask once, in one request, about every file the static site serves.

        Otherwise the first request for each asset would wait for its own
        question to the child.
        """
        paths = sorted(
            "/" + name[len(_PUBLIC) :].removesuffix("/index.html").removesuffix("index.html")
            for name in self.artifact.manifest.files
            if name.startswith(_PUBLIC)
        )
        paths = sorted({p.rstrip("/") if p != "/" else "" for p in paths} | set(paths))
        try:
            status, body = await self._forwarder.request(
                "POST",
                OWNS_PATH,
                [(SECRET_HEADER, self._secret()), (b"content-type", b"application/json")],
                json.dumps({"method": "GET", "paths": paths}).encode(),
            )
        except Exception:
            return  # only an optimisation: ask() answers path by path
        if status != 200:
            return
        for path, owned in zip(paths, json.loads(body)["owns"], strict=True):
            if len(self._memo) < _MAX_MEMO:
                self._memo[("GET", path)] = bool(owned)
                self._memo[("HEAD", path)] = bool(owned)

    @property
    def asgi(self) -> ASGIApp:
        """Forwards one request (its scope already relative to the prefix)."""
        return self._forwarder

    # -- supervision ---------------------------------------------------------

    def _secret(self) -> bytes:
        try:
            return self._secret_path.read_bytes()
        except OSError:
            return b""

    def _try_lock(self) -> bool:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            os.close(fd)

    async def _supervise(self) -> None:
        pause = 0.5
        try:
            while not self._stopping.is_set():
                if self._lock_fd is None and not self._try_lock():
                    # Another worker owns the child; take over if it goes.
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), _FOLLOW_INTERVAL)
                    continue
                started = time.monotonic()
                child = await self._spawn()
                code = await child.wait()
                self.child = None
                if self._stopping.is_set():
                    return
                if not self._answered:
                    # It never came up (an import error, a bad config): startup
                    # fails now with the exit status, not after the timeout; the
                    # child's own output is above in the host's.
                    raise ReflexBuilddError(
                        f"the backend process of {self.project.root} exited with "
                        f"{_describe(code)} before it answered (its output is above)"
                    )
                self.restarts += 1
                metrics.backend_restarted()
                logger.warning(
                    "reflex-buildd: the backend process of %s (pid %s) exited with %s; "
                    "restarting it",
                    self.project.root,
                    child.pid,
                    _describe(code),
                )
                # A child that dies at once would otherwise restart in a tight loop.
                pause = 0.5 if time.monotonic() - started > 30 else min(pause * 2, 10.0)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), pause)
        finally:
            self._unlock()
            self._web.remove()

    async def _spawn(self) -> asyncio.subprocess.Process:
        secret = secrets.token_hex(16).encode()
        tmp = self._secret_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secret)
        os.replace(tmp, self._secret_path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        env = dict(os.environ)
        env.update(
            {
                "REFLEX_WEB_WORKDIR": str(self._web.open()),
                PARENT_ENV: str(os.getpid()),
                SECRET_ENV: secret.decode(),
            }
        )
        self.child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "reflex_buildd_client.backend.child",
            self.socket_path,
            cwd=self.project.root,
            env=env,
            preexec_fn=dies_with_parent(signal.SIGKILL),
        )
        logger.info(
            "reflex-buildd: backend process of %s started (pid %s) on %s",
            self.project.root,
            self.child.pid,
            self.socket_path,
        )
        return self.child

    async def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            supervisor = self._supervisor
            if supervisor is not None and supervisor.done():
                supervisor.result()
                raise ReflexBuilddError("the backend supervisor stopped")
            with contextlib.suppress(Exception):
                status, _ = await self._forwarder.request("GET", "/ping")
                if status == 200 and self._secret():
                    self._answered = True
                    return
            if time.monotonic() > deadline:
                raise ReflexBuilddError(
                    f"the backend process of {self.project.root} did not answer on "
                    f"{self.socket_path} within {timeout:.0f}s (see its output above)"
                )
            await asyncio.sleep(0.1)

    async def _stop(self) -> None:
        self._stopping.set()
        child = self.child
        if child is not None and child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.terminate()
            try:
                await asyncio.wait_for(child.wait(), _STOP_GRACE)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
                await child.wait()
        if (supervisor := self._supervisor) is not None:
            self._supervisor = None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(supervisor, _STOP_GRACE)
        await self._forwarder.aclose()


def _require_process_extras() -> None:
    import importlib.util

    missing = [m for m in ("uvicorn", "websockets") if importlib.util.find_spec(m) is None]
    if missing:
        raise ReflexBuilddError(
            f'backend="process" needs {" and ".join(missing)}: pip install uvicorn websockets'
        )


def _describe(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"status {code}"
