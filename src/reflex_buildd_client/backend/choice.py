"""Choose where a mounted project's backend runs: in the host, or in a child.

``"inprocess"`` (the default) loads the Reflex app into the host process
(:mod:`.inprocess`); ``"process"`` runs Reflex's own backend in a child process
in the project directory (:mod:`.process`). Both have the same face
(:class:`Backend`), so the mount does not care which it got.
"""

from __future__ import annotations

import threading
from typing import Protocol

from ..cache.store import Artifact, Cache
from ..errors import ReflexBuilddError
from ..project import Project
from ..settings import Settings
from ..types import ASGIApp
from .bounds import Bounds

__all__ = ["Backend", "BackendUnavailableError", "open_backend"]

_lock = threading.Lock()
_process_backends: dict[str, Backend] = {}


class BackendUnavailableError(ReflexBuilddError, ConnectionError):
    """The backend did not answer within its bound (stuck or restarting): answer 503."""


class Backend(Protocol):
    """What the mount needs of a backend."""

    async def acquire(self) -> None:
        """Start it (or count one more user)."""

    async def release(self) -> None:
        """One user less; stop it after the last."""

    def owns(self, path: str, method: str = "GET") -> bool | None:
        """Whether it routes the request; None when only :meth:`ask` can tell."""

    async def ask(self, path: str, method: str = "GET") -> bool:
        """Whether it routes the request (may ask the backend).

        Raises:
            BackendUnavailableError: If the backend does not answer in time.
        """

    @property
    def asgi(self) -> ASGIApp:
        """Serves one request whose scope is relative to the prefix."""


def open_backend(
    settings: Settings,
    project: Project,
    artifact: Artifact,
    cache: Cache,
    bounds: Bounds | None = None,
) -> Backend:
    """The backend of ``project`` in ``settings.backend``'s mode, shared by every
    mount of it in this process (process mode: ``settings.backend_workers``
    children; ``bounds``: the forwarder's waits on them)."""
    if settings.backend == "inprocess":
        from .inprocess import load_backend

        return load_backend(project, artifact)
    from .process import ProcessBackend, pool_name

    name = pool_name(project, artifact, cache)
    with _lock:
        if (backend := _process_backends.get(name)) is None:
            backend = _process_backends[name] = ProcessBackend(
                project, artifact, cache, settings, bounds
            )
        return backend
