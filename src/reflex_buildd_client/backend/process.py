"""Process mode: the project's Reflex backend in child processes, one pool per machine.

``mount(..., backend="process")`` keeps Reflex out of the host: each child
(:mod:`.child`) runs with the project as its working directory, configured
as ``reflex run --env prod --backend-only``, on a Unix socket; the mount
serves the static files itself and forwards the backend's requests
(:mod:`.forward`). So relative paths, the app's own config and its state
manager behave as under ``reflex run``, a crash of the app is not a crash of
the host, and several projects can share one host.

``backend_workers`` (``REFLEX_BUILDD_BACKEND_WORKERS``, default 1, ``auto``:
the machine's cores) children serve one project, as ``reflex run`` runs one
backend worker per core in production. One child is what ``reflex run
--backend-only`` with one worker is, so every state manager is safe with it;
several need a state manager they share (Redis), and a child refuses to
start otherwise (:func:`.child.shared_state_problem`), which fails the
backend's start with one line.

Spreading the work, in each host worker:

- a websocket (a socket.io session) goes to the child with the least open
  sessions and requests of this worker, and stays on it for its lifetime; a
  dead child's sessions see their socket close, the frontend reconnects, and
  the new connection goes to a live child (with Redis the state is there);
- an HTTP request goes to the least loaded child too: with shared state any
  child can serve any request (uploads and API routes included);
- a child that misses a health probe gets no new work until it answers
  again (:mod:`.supervisor`), and the routing question (which paths the backend
  owns) is bounded by :data:`ASK_TIMEOUT`: past it the request gets 503.

The supervisor only chooses a child (its socket, :attr:`.ChildSlot.forwarder`);
forwarding itself is the forwarder's. Supervision, ownership across host
workers and the runtime directory are in :mod:`.supervisor` and :mod:`.rundir`.

Each pool is named by a digest of the cache, the project and the artifact
key: a new build starts new children, never reuses one with another build's
markers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from pathlib import Path
from urllib.parse import urlencode

import blake3

from ..cache.store import PUBLIC_DIR, Artifact, Cache
from ..project import Project
from ..settings import Settings
from ..types import ASGIApp, Message, Receive, Scope, Send
from .bounds import Bounds
from .child import FORGET_PATH, OWNS_PATH, SECRET_HEADER
from .choice import BackendUnavailableError
from .rundir import RuntimeDir
from .supervisor import READY_TIMEOUT, ChildSlot, ChildSpec

__all__ = ["ASK_TIMEOUT", "ProcessBackend", "pool_name"]

# Where an artifact's static files are (the store's name), as manifest paths start.
_PUBLIC = PUBLIC_DIR + "/"
_MAX_MEMO = 4096
# The routing question's bound: a router answers in microseconds, so a child
# that takes this long is stuck or overloaded (uvicorn's healthcheck bound).
ASK_TIMEOUT = 5.0
# The close code the forwarder sends when the child's connection ended without a
# close frame: the child died.
_CHILD_GONE = 1011
# One death, one forget: the sessions of a dead child all close within moments.
_FORGET_AGAIN = 10.0


def pool_name(project: Project, artifact: Artifact, cache: Cache) -> str:
    """The name of a project's pool: the same in every worker of every host on the machine."""
    return blake3.blake3(
        f"{cache.root.resolve()}\0{project.root}\0{artifact.key}".encode()
    ).hexdigest()[:20]


class ProcessBackend:
    """The backend of one project in ``settings.backend_workers`` child processes.

    Same face as the in-process backend: :meth:`acquire` / :meth:`release`
    around the host's lifespan, :meth:`owns` / :meth:`ask` to route,
    :attr:`asgi` to serve.

    Raises:
        RuntimeDirError: If the runtime directory is not private to this user.
    """

    def __init__(
        self,
        project: Project,
        artifact: Artifact,
        cache: Cache,
        settings: Settings,
        bounds: Bounds | None = None,
    ) -> None:
        _require_process_extras()
        self.project = project
        self.artifact = artifact
        self.name = pool_name(project, artifact, cache)
        self.rundir = RuntimeDir(Path(settings.runtime_dir))
        spec = ChildSpec(project, artifact, settings.backend_workers, bounds or Bounds())
        self.slots = [
            ChildSlot(spec, self.rundir, f"{self.name}-{i}", self._forget_once)
            for i in range(settings.backend_workers)
        ]
        self._memo: dict[tuple[str, str], bool] = {}
        self._users = 0
        self._guard = asyncio.Lock()
        self._turn = itertools.count()
        self._forgetting: dict[str, tuple[asyncio.Future[None], float]] = {}

    @property
    def restarts(self) -> int:
        """Deaths of this worker's children, restarted (counted in :class:`.ChildSlot`)."""
        return sum(slot.restarts for slot in self.slots)

    # -- the backend interface ------------------------------------------------

    async def acquire(self) -> None:
        """Start (or join) the children, and wait until every one answers."""
        async with self._guard:
            if self._users == 0:
                self._memo.clear()
                # A crash's leftovers (of any pool) go before anything starts.
                await asyncio.to_thread(self.rundir.sweep)
                for slot in self.slots:
                    await slot.start()
                try:
                    await asyncio.gather(*(s.wait_ready(READY_TIMEOUT) for s in self.slots))
                except BaseException:
                    await self._stop()
                    raise
                await self._prewarm()
            self._users += 1

    async def release(self) -> None:
        """Stop the children (those this worker owns) when the last mount using them stops."""
        async with self._guard:
            self._users -= 1
            if self._users == 0:
                await self._stop()

    def owns(self, path: str, method: str = "GET") -> bool | None:
        """Whether the backend routes this request; None: not known yet (:meth:`ask`)."""
        return self._memo.get((method, path))

    async def ask(self, path: str, method: str = "GET") -> bool:
        """Ask a child's router (once per path and method) whether it routes this.

        Raises:
            BackendUnavailableError: If no child answers within :data:`ASK_TIMEOUT`.
        """
        slot = self.choose()
        target = OWNS_PATH + "?" + urlencode({"path": path, "method": method})
        try:
            status, body = await asyncio.wait_for(
                slot.forwarder.request("GET", target, [(SECRET_HEADER, slot.secret())]),
                ASK_TIMEOUT,
            )
        except TimeoutError:
            slot.mark_unresponsive(f"which paths it routes within {ASK_TIMEOUT:.0f}s")
            raise BackendUnavailableError(
                f"the backend did not answer within {ASK_TIMEOUT:.0f}s"
            ) from None
        except Exception:
            return True  # the child is restarting: the forwarder answers for it
        if status != 200:
            return True
        owned = bool(json.loads(body)["owns"])
        if len(self._memo) >= _MAX_MEMO:
            self._memo.clear()
        self._memo[(method, path)] = owned
        return owned

    def choose(self) -> ChildSlot:
        """The child for new work: the least loaded of those answering probes.

        Ties go round-robin, so an idle pool still spreads. When none answers
        (all restarting or stuck), the least loaded of all: its socket keeps
        the connection waiting for the next child, within the forwarder's bounds.
        """
        slots = [s for s in self.slots if s.healthy] or self.slots
        if len(slots) == 1:
            return slots[0]
        turn = next(self._turn)
        n = len(self.slots)
        return min(slots, key=lambda s: (s.load, (self.slots.index(s) - turn) % n))

    @property
    def asgi(self) -> ASGIApp:
        """Forwards one request (its scope already relative to the prefix) to a child."""
        return self._dispatch

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        slot = self.choose()
        if scope["type"] != "websocket":
            slot.inflight += 1
            try:
                await slot.forwarder(scope, receive, send)
            finally:
                slot.inflight -= 1
            return

        async def send_after_forget(message: Message) -> None:
            if message["type"] == "websocket.close" and message.get("code") == _CHILD_GONE:
                # The child went without a close frame (it died): its session records
                # go before the browser hears of it, or the browser's immediate
                # reconnect would race the supervisor's forget and get a new token.
                # Nor does it go back to this slot before its next child answers a probe.
                slot.healthy = False
                await self._forget_once(slot)
            await send(message)

        slot.sessions += 1
        try:
            await slot.forwarder(scope, receive, send_after_forget)
        finally:
            slot.sessions -= 1

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
        slot = self.choose()
        try:
            status, body = await asyncio.wait_for(
                slot.forwarder.request(
                    "POST",
                    OWNS_PATH,
                    [(SECRET_HEADER, slot.secret()), (b"content-type", b"application/json")],
                    json.dumps({"method": "GET", "paths": paths}).encode(),
                ),
                ASK_TIMEOUT * 4,
            )
        except Exception:
            return  # only an optimisation: ask() answers path by path
        if status != 200:
            return
        for path, owned in zip(paths, json.loads(body)["owns"], strict=True):
            if len(self._memo) < _MAX_MEMO:
                self._memo[("GET", path)] = bool(owned)
                self._memo[("HEAD", path)] = bool(owned)

    async def _forget_once(self, dead: ChildSlot) -> None:
        """:meth:`_forget`, once per death however many sessions (and the supervisor) ask."""
        now = time.monotonic()
        task, since = self._forgetting.get(dead.stem, (None, 0.0))
        if task is None or now - since > _FORGET_AGAIN:
            task = asyncio.ensure_future(self._forget(dead))
            self._forgetting[dead.stem] = (task, now)
        with contextlib.suppress(Exception):
            await asyncio.shield(task)

    async def _forget(self, dead: ChildSlot) -> None:
        """A child died: a live one drops its session records, so its sessions keep
        their tokens (and state) when they reconnect (:mod:`.sessions`)."""
        live = [s for s in self.slots if s is not dead and s.healthy]
        if not live:
            return  # the slot's next child does it when it starts
        slot = live[0]
        body = json.dumps({"instance": dead.instance}).encode()
        headers = [(SECRET_HEADER, slot.secret()), (b"content-type", b"application/json")]
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                slot.forwarder.request("POST", FORGET_PATH, headers, body), ASK_TIMEOUT
            )

    async def _stop(self) -> None:
        await asyncio.gather(*(slot.stop() for slot in self.slots))


def _require_process_extras() -> None:
    import importlib.util

    from ..errors import ReflexBuilddError

    missing = [m for m in ("uvicorn", "websockets") if importlib.util.find_spec(m) is None]
    if missing:
        raise ReflexBuilddError(
            f'backend="process" needs {" and ".join(missing)}: pip install uvicorn websockets'
        )
