"""One backend child of process mode: who runs it, when it restarts, whether it answers.

A slot is one child of a project's pool (:mod:`.process`), named by a stem
in the runtime directory (:mod:`.rundir`): ``<stem>.lock``, ``<stem>.secret``,
``<stem>.sock``. Every worker of a host has the same slots; the worker that
holds a slot's lock owns its child, the others forward to the same socket and
take over (start a new child) when the owner goes away. So all workers of a
host on one machine share one set of children.

The owner binds the socket itself, through the runtime directory's
descriptor, and hands the listening socket to the child (uvicorn's ``fd``):
no path is resolved after the directory was checked, connections made while
the child restarts wait in the socket's backlog for the next child instead of
failing, and the owner removes the socket, the secret and the lock when it
stops (a crash's leftovers are swept by the next start, :meth:`.RuntimeDir.sweep`).

Supervision, per slot:

- the child starts with the host's lifespan and stops with it (SIGTERM, then
  SIGKILL after :data:`STOP_GRACE`); it never outlives its owner (a
  parent-death signal, armed before exec);
- it is restarted when it dies, with a growing pause if it keeps dying; each
  death is logged with its exit status and counted in one place
  (:meth:`ChildSlot._restarted`);
- every worker probes every slot (``GET /ping`` through the child's event
  loop, every :data:`PROBE_INTERVAL` seconds, each probe bounded by
  :data:`PROBE_TIMEOUT`, uvicorn's ``--timeout-worker-healthcheck``). A slot
  that misses a probe is *unresponsive*: new sessions and requests go to the
  other children, and the host logs it once per incident, not per request;
- the owner kills (SIGKILL) a child that has answered no probe for
  :data:`STUCK_AFTER` seconds (gunicorn's worker ``--timeout``: a worker
  silent that long is killed and replaced), whether it is stopped (SIGSTOP)
  or its event loop is blocked by a long synchronous handler; the restart
  follows as for any death. A child that never answers at all is killed after
  :data:`READY_TIMEOUT`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .. import metrics
from ..cache.store import Artifact
from ..children import dies_with_parent
from ..errors import ReflexBuilddError
from ..project import Project
from .bounds import Bounds
from .child import (
    INSTANCE_ENV,
    PARENT_ENV,
    SECRET_ENV,
    SHARED_STATE_ENV,
    SHARED_STATE_REFUSED,
)
from .forward import UnixForwarder
from .rundir import RuntimeDir
from .webdir import PrivateWebDir

__all__ = [
    "PROBE_INTERVAL",
    "PROBE_TIMEOUT",
    "READY_TIMEOUT",
    "STOP_GRACE",
    "STUCK_AFTER",
    "ChildSlot",
    "ChildSpec",
    "describe_exit",
]

logger = logging.getLogger("reflex_buildd")

PROBE_INTERVAL = 2.0
PROBE_TIMEOUT = 5.0
STUCK_AFTER = 30.0
READY_TIMEOUT = 120.0
STOP_GRACE = 10.0
# How often a worker that does not own a slot tries to take it over.
_FOLLOW_INTERVAL = 0.5


@dataclass(frozen=True)
class ChildSpec:
    """What every child of one project's pool runs.

    Attributes:
        project: The project (the child's working directory).
        artifact: The artifact whose build markers the child reads.
        workers: How many children the pool has; more than one requires a
            state manager the children share (the child refuses otherwise).
        bounds: How long the forwarder waits on a child (:mod:`.bounds`).
    """

    project: Project
    artifact: Artifact
    workers: int = 1
    bounds: Bounds = field(default_factory=Bounds)


class ChildSlot:
    """One child of the pool: supervised here if this worker owns it, probed in any case."""

    def __init__(
        self,
        spec: ChildSpec,
        rundir: RuntimeDir,
        stem: str,
        on_death: Callable[[ChildSlot], Awaitable[None]] | None = None,
    ) -> None:
        self.spec = spec
        self.stem = stem
        # Reflex's token-manager identity of this slot's children (:mod:`.sessions`).
        self.instance = f"{socket.gethostname()}-{stem}"
        self._on_death = on_death
        self._rundir = rundir
        self.socket_path = rundir.address(stem + ".sock")
        self.forwarder = UnixForwarder(self.socket_path, spec.bounds)
        # This worker's websocket sessions and HTTP requests on the child.
        self.sessions = 0
        self.inflight = 0
        self.healthy = False
        self.restarts = 0
        self.child: asyncio.subprocess.Process | None = None
        self._lock_fd: int | None = None
        self._listener: socket.socket | None = None
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._answered = False  # a child of this slot answered since start()
        self._last_answer = 0.0
        self._reported = False  # this incident is logged
        # The child's .web: a private copy of the markers, kept across its
        # restarts, removed when supervision ends (webdir.py says why).
        self._web = PrivateWebDir(spec.artifact)

    @property
    def load(self) -> int:
        """This worker's open sessions and requests on the child."""
        return self.sessions + self.inflight

    @property
    def owned(self) -> bool:
        """Whether this worker supervises the child."""
        return self._lock_fd is not None

    def secret(self) -> bytes:
        """The current child's secret (b"" before it has one)."""
        return self._rundir.read_secret(self.stem + ".secret")

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Start supervising (or following) and probing."""
        self._stopping.clear()
        self._answered = False
        self.forwarder = UnixForwarder(self.socket_path, self.spec.bounds)
        self._tasks = [
            asyncio.create_task(self._supervise(), name=f"reflex-buildd child {self.stem}"),
            asyncio.create_task(self._probe_loop(), name=f"reflex-buildd probe {self.stem}"),
        ]

    async def wait_ready(self, timeout: float) -> None:
        """Wait until the slot's child answers ``/ping`` (and has its secret)."""
        deadline = time.monotonic() + timeout
        while True:
            supervisor = self._tasks[0] if self._tasks else None
            if supervisor is not None and supervisor.done():
                supervisor.result()
                raise ReflexBuilddError("the backend supervisor stopped")
            if await self.probe(min(1.0, PROBE_TIMEOUT)) and self.secret():
                self._answered = self.healthy = True
                return
            if time.monotonic() > deadline:
                raise ReflexBuilddError(
                    f"the backend process of {self.spec.project.root} did not answer on "
                    f"{self._rundir.path / (self.stem + '.sock')} within {timeout:.0f}s "
                    "(see its output above)"
                )
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        """Stop the child (if owned) and the tasks; the owner removes the slot's files."""
        self._stopping.set()
        child = self.child
        if child is not None and child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.terminate()
            try:
                await asyncio.wait_for(child.wait(), STOP_GRACE)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
                await child.wait()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, STOP_GRACE)
        await self.forwarder.aclose()

    # -- health --------------------------------------------------------------

    async def probe(self, timeout: float = PROBE_TIMEOUT) -> bool:
        """Whether the child answers ``GET /ping`` with 200 within ``timeout``."""
        try:
            status, _ = await asyncio.wait_for(self.forwarder.request("GET", "/ping"), timeout)
        except Exception:
            return False
        if status == 200:
            self._last_answer = time.monotonic()
        return status == 200

    def mark_unresponsive(self, what: str) -> None:
        """No new work for this child until a probe answers; logged once per incident."""
        self.healthy = False
        if not self._reported:
            self._reported = True
            logger.warning(
                "reflex-buildd: the backend process of %s (%s) did not answer %s; "
                "new requests go elsewhere or get 503 until it answers again",
                self.spec.project.root,
                self.stem,
                what,
            )

    async def _probe_loop(self) -> None:
        while not self._stopping.is_set():
            if await self.probe():
                if self._reported:
                    logger.warning(
                        "reflex-buildd: the backend process of %s (%s) answers again",
                        self.spec.project.root,
                        self.stem,
                    )
                self._reported = False
                self.healthy = True
            elif self._answered:
                self.mark_unresponsive(f"/ping within {PROBE_TIMEOUT:.0f}s")
                self._kill_if_stuck()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), PROBE_INTERVAL)

    def _kill_if_stuck(self) -> None:
        child = self.child
        if child is None or child.returncode is not None:
            return
        silent = time.monotonic() - self._last_answer
        if silent > STUCK_AFTER:
            logger.warning(
                "reflex-buildd: the backend process of %s (pid %s) answered nothing for "
                "%.0fs; killing it (it restarts)",
                self.spec.project.root,
                child.pid,
                silent,
            )
            with contextlib.suppress(ProcessLookupError):
                child.kill()

    # -- supervision ---------------------------------------------------------

    async def _supervise(self) -> None:
        pause = 0.5
        try:
            while not self._stopping.is_set():
                if self._lock_fd is None and not self._take_over():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), _FOLLOW_INTERVAL)
                    continue
                started = time.monotonic()
                child = await self._spawn()
                code = await child.wait()
                self.child = None
                self.healthy = False  # no new work until the next child answers a probe
                if self._stopping.is_set():
                    return
                if not self._answered:
                    raise _never_answered(self.spec, code)
                self._restarted(child.pid, code)
                if self._on_death is not None:
                    await self._on_death(self)
                # A child that dies at once would otherwise restart in a tight loop.
                pause = 0.5 if time.monotonic() - started > 30 else min(pause * 2, 10.0)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), pause)
        finally:
            self._give_up()
            self._web.remove()

    def _take_over(self) -> bool:
        """Take the slot's lock (not waiting) and bind its socket: this worker owns the child."""
        fd = self._rundir.try_lock(self.stem + ".lock")
        if fd is None:
            return False
        try:
            self._listener = self._rundir.listen(self.stem + ".sock")
        except BaseException:
            self._rundir.release(self.stem, fd)
            raise
        self._lock_fd = fd
        return True

    def _give_up(self) -> None:
        """Close the socket and remove the slot's files (the owner only), then unlock."""
        if (listener := self._listener) is not None:
            self._listener = None
            listener.close()
        if (fd := self._lock_fd) is not None:
            self._lock_fd = None
            self._rundir.release(self.stem, fd)

    def _restarted(self, pid: int, code: int) -> None:
        """The one place a child's death is counted and logged."""
        self.restarts += 1
        metrics.backend_restarted()
        logger.warning(
            "reflex-buildd: the backend process of %s (pid %s) exited with %s; restarting it",
            self.spec.project.root,
            pid,
            describe_exit(code),
        )

    async def _spawn(self) -> asyncio.subprocess.Process:
        assert self._listener is not None
        secret = secrets.token_hex(16).encode()
        self._rundir.write_secret(self.stem + ".secret", secret)
        listener = self._listener.fileno()
        env = dict(os.environ)
        env.update(
            {
                "REFLEX_WEB_WORKDIR": str(self._web.open()),
                PARENT_ENV: str(os.getpid()),
                SECRET_ENV: secret.decode(),
                SHARED_STATE_ENV: "1" if self.spec.workers > 1 else "",
                INSTANCE_ENV: self.instance,
            }
        )
        self.child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "reflex_buildd_client.backend.child",
            "--fd",
            str(listener),
            cwd=self.spec.project.root,
            env=env,
            pass_fds=(listener,),
            preexec_fn=dies_with_parent(signal.SIGKILL),
        )
        self._last_answer = time.monotonic() + READY_TIMEOUT - STUCK_AFTER
        logger.info(
            "reflex-buildd: backend process of %s started (pid %s) on %s",
            self.spec.project.root,
            self.child.pid,
            self._rundir.path / (self.stem + ".sock"),
        )
        return self.child


def _never_answered(spec: ChildSpec, code: int) -> ReflexBuilddError:
    """A child that died before it ever answered: startup fails now, with the reason."""
    if code == SHARED_STATE_REFUSED:
        return ReflexBuilddError(
            f"backend_workers={spec.workers}: the app of {spec.project.root} keeps its state "
            "in one process (not Redis); several backend processes need Redis "
            "(REFLEX_REDIS_URL or redis_url in rxconfig.py), or set backend_workers=1"
        )
    # An import error, a bad config: the child's own output is above in the host's.
    return ReflexBuilddError(
        f"the backend process of {spec.project.root} exited with "
        f"{describe_exit(code)} before it answered (its output is above)"
    )


def describe_exit(code: int) -> str:
    """``status N`` or ``signal SIGNAME``, from a subprocess's return code."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"status {code}"
