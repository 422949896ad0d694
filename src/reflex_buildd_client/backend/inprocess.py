"""Load a project's Reflex backend into the host process (its lifespan: lifespan.py).

Reflex normally finds its app through the current directory (``rxconfig.py``
from cwd, the app module imported with cwd on ``sys.path``). A host must not
have to ``chdir`` for us, so the project is loaded explicitly:

- the config comes from ``<project>/rxconfig.py`` (Reflex's own loader, with
  the project root passed in);
- the app module is imported with the project root on ``sys.path``;
- the backend reads its build markers (``upload_is_used``, stateful pages)
  from a private copy of the artifact's (:mod:`.webdir`: Reflex writes there),
  through ``REFLEX_WEB_WORKDIR``, and never compiles;
- the project's config is the default wherever Reflex loads one
  (:mod:`.reflex_config`), so event handlers, lifespan tasks and API routes
  see its ``db_url`` and the rest;
- relative run-time paths keep Reflex's own defaults (``uploaded_files/``,
  ``.states/``, a relative sqlite ``db_url``, ``open("data/x")``), so they
  resolve against the host's working directory, one rule for all of them; the
  host warns where that is when the app uses such a path (:mod:`.workdir`). ``backend="process"``
  runs the backend in the project instead, as ``reflex run`` does.

Reflex keeps one app per process (a global state registry), so loading a
second, different project raises instead of mixing states.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

from ..cache.store import Artifact
from ..errors import ReflexBuilddError
from ..project import Project
from ..types import ASGIApp
from .lifespan import LifespanDriver
from .reflex_config import pin_project_config
from .routes import BackendRoutes
from .webdir import PrivateWebDir
from .workdir import relative_path_uses, warn_relative_paths

__all__ = ["ReflexBackend", "load_backend"]

logger = logging.getLogger("reflex_buildd")

_lock = threading.Lock()
_loaded: dict[str, ReflexBackend] = {}


class ReflexBackend:
    """The Reflex ASGI backend of one project, loaded once per process.

    Attributes:
        asgi: The ASGI app Reflex builds (event websocket, upload, ping, ...).
        routes: Its router, asked which requests it takes.
    """

    def __init__(
        self, asgi: ASGIApp, routes: BackendRoutes, web: PrivateWebDir | None = None
    ) -> None:
        self.asgi = asgi
        self.routes = routes
        # Reflex's .web: there while a lifespan runs, removed when the last stops.
        self._web = web
        self._users = 0
        self._driver: LifespanDriver | None = None
        self._guard = asyncio.Lock()

    async def acquire(self) -> None:
        """Start the lifespan for the first mount that uses this backend.

        One project may be mounted at several paths of one host; its lifespan
        (one event processor) must still run once.
        """
        async with self._guard:
            if self._users == 0:
                if self._web is not None:
                    os.environ["REFLEX_WEB_WORKDIR"] = str(self._web.open())
                driver = LifespanDriver(self.asgi)
                try:
                    await driver.startup()
                except BaseException:
                    if self._web is not None:
                        self._web.remove()
                    raise
                self._driver = driver
            self._users += 1

    async def release(self) -> None:
        """Stop the lifespan when the last mount using this backend stops."""
        async with self._guard:
            self._users -= 1
            if self._users == 0 and self._driver is not None:
                driver, self._driver = self._driver, None
                await driver.shutdown()
                if self._web is not None:
                    self._web.remove()

    def owns(self, path: str, method: str = "GET") -> bool:
        """Whether a request (path below the prefix) belongs to the backend."""
        return self.routes.owns(path, method)

    async def ask(self, path: str, method: str = "GET") -> bool:
        """The same as :meth:`owns`: the router is here to ask."""
        return self.routes.owns(path, method)


def _load(project: Project, artifact: Artifact) -> ReflexBackend:
    # Reflex writes into its .web (webdir.py): a private copy of the markers,
    # never the artifact. One per process, as the Reflex app is.
    web = PrivateWebDir(artifact)
    atexit.register(web.remove)
    os.environ["REFLEX_WEB_WORKDIR"] = str(web.open())
    try:
        return _import_app(project, web)
    except BaseException:
        web.remove()  # an app that cannot load leaves no directory behind
        raise


def _import_app(project: Project, web: PrivateWebDir) -> ReflexBackend:
    # The frontend is prebuilt: never compile (and never write a .web), and
    # run as `reflex run --backend-only` does, so that importing the app
    # links no shared assets into the host's working directory.
    os.environ["__REFLEX_SKIP_COMPILE"] = "true"
    os.environ["REFLEX_BACKEND_ONLY"] = "true"
    pin_project_config(project.root)

    from reflex_base.config import _get_config
    from reflex_base.registry import RegistrationContext

    ctx = RegistrationContext.ensure_context()
    config = _get_config(project.root)
    ctx._set_config(config)
    root = str(project.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    module = importlib.import_module(config.module)
    app = getattr(module, "app", None)
    from reflex.app import App

    if not isinstance(app, App):
        raise ReflexBuilddError(f"{config.module}.app is not an rx.App (project {root})")
    asgi = app()
    _log_relative_paths(project, config)
    return ReflexBackend(asgi, BackendRoutes(asgi), web)


def _log_relative_paths(project: Project, config: Any) -> None:
    """Warn (once per host) if the app uses relative paths and the host runs elsewhere."""
    from reflex.utils import prerequisites
    from reflex_base import constants
    from reflex_base.environment import environment

    # Reflex's own marker, in the private copy of the artifact's: the app's pages use uploads.
    used = (prerequisites.get_backend_dir() / constants.Dirs.UPLOAD_IS_USED).exists()
    uses = relative_path_uses(
        project.root,
        app_package=config.module,
        db_url=config.db_url,
        env_file=config.env_file,
        uploads_dir=environment.REFLEX_UPLOADED_FILES_DIR.get() if used else None,
    )
    warn_relative_paths(project.root, Path.cwd(), uses, app_name=project.app_name)


def load_backend(project: Project, artifact: Artifact) -> ReflexBackend:
    """The backend of ``project``, loading it on first use in this process.

    Raises:
        ReflexBuilddError: If another project's app is already loaded here.
    """
    with _lock:
        if (backend := _loaded.get(str(project.root))) is not None:
            return backend
        if _loaded:
            (other,) = _loaded
            raise ReflexBuilddError(
                f"cannot mount {project.root}: this process already runs the Reflex "
                f"app of {other}, and Reflex keeps one app per process (a global "
                'state registry); mount the second project with backend="process" '
                "to run its backend in a process of its own"
            )
        backend = _load(project, artifact)
        _loaded[str(project.root)] = backend
        return backend
