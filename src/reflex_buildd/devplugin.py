"""The Reflex plugin of ``reflex-buildd dev``: the build's plugin, plus the route list.

It patches the frontend exactly as a build does (:class:`BuilddPlugin`: the
backend is found through the page's ``<meta>`` tag, under the prefix), and
after every (re)load of the app in the dev backend it writes the backend's
top-level route paths where the dev target says (``REFLEX_BUILDD_DEV``), so
the host's proxy knows which requests are the backend's (``api_transformer``
routes included) without loading the app itself.

It also keeps Reflex's lockfiles out of the project: after installing frontend
packages Reflex copies ``.web``'s lockfiles and ``package.json`` to
``<cwd>/reflex.lock/`` (``reflex run`` runs in the project), and that
directory is a build input. A dev session reads the project's pins (the
supervisor seeds its own copy from them) and writes only that copy, so
developing never changes the key production builds.

A separate class, not a change to :class:`BuilddPlugin`: that file is hashed
into every build key, and dev mode must not change production keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reflex_buildd_client.cache.atomic import write_atomic
from reflex_buildd_client.settings import Settings

from .plugin import BuilddPlugin

if TYPE_CHECKING:
    from reflex_buildd_client.dev.target import DevTarget

__all__ = ["DevPlugin", "dev_target", "keep_lockfiles_in", "route_paths"]


def route_paths(app: Any) -> set[str]:
    """The top-level paths of Reflex's backend app and of its ``api_transformer`` apps.

    A list, because the host's proxy cannot ask the app (it runs in another
    process). Route objects without a path of their own are looked into for
    theirs: FastAPI 0.165's ``include_router`` adds one that lists its routes
    with their full paths (``effective_route_contexts``); a mount's app has
    routes of its own.
    """
    from reflex_buildd_client.backend.routes import routes_of

    transformers = getattr(app, "api_transformer", None)
    if not isinstance(transformers, list | tuple):
        transformers = [transformers]
    paths: set[str] = set()
    pending = [r for routed in (getattr(app, "_api", None), *transformers) for r in _routes(routed)]
    for _ in range(10_000):  # nested routers are few; never loop forever
        if not pending:
            break
        route = pending.pop()
        if path := getattr(route, "path", ""):
            paths.add(path.split("{", 1)[0].rstrip("/") or path)
        elif callable(contexts := getattr(route, "effective_route_contexts", None)):
            pending.extend(contexts())  # FastAPI's included router: each route, full path
        else:
            pending.extend(_routes(route) or routes_of(getattr(route, "app", None)) or ())
    return {p for p in paths if p not in ("", "/")}


def _routes(routed: Any) -> list[Any]:
    routes = getattr(routed, "routes", None)
    return list(routes) if isinstance(routes, list | tuple) else []


def keep_lockfiles_in(directory: Path) -> None:
    """Make this process's Reflex read and write ``reflex.lock/`` in ``directory``.

    Reflex finds the directory through one function,
    ``frontend_skeleton.get_root_lockfile_path`` (``<cwd>/reflex.lock/<name>``),
    looked up at each call; it is replaced for this process only.
    """
    from reflex.utils import frontend_skeleton

    def lockfile_path(filename: str) -> Path:
        return directory / filename

    frontend_skeleton.get_root_lockfile_path = lockfile_path


def dev_target() -> DevTarget | None:
    """Where ``reflex-buildd dev`` runs its servers (``REFLEX_BUILDD_DEV``), None outside dev.

    The dev servers' processes (the dev server and every worker Reflex's reloader starts,
    where this plugin runs) are entry points of their own: their settings are loaded here,
    the one place they are read.
    """
    return Settings.load().dev


class DevPlugin(BuilddPlugin):
    """:class:`BuilddPlugin` that also publishes the backend's routes for the host."""

    def pre_compile(self, **context: Any) -> None:
        """Patch ``state.js`` as a build does; keep the lockfiles in the dev workspace.

        Every process that compiles (each reload's worker) passes here before
        Reflex installs packages and writes the lockfiles back.

        Args:
            context: The pre-compile context Reflex passes to plugins.
        """
        target = dev_target()
        if target is not None and target.lockfiles_dir is not None:
            keep_lockfiles_in(target.lockfiles_dir)
        super().pre_compile(**context)

    def post_compile(self, **context: Any) -> None:
        """Write the app's route paths where the host's proxy reads them.

        Args:
            context: Reflex passes the app as ``app``.
        """
        target = dev_target()
        app = context.get("app")
        if target is None or target.routes_file is None or app is None:
            return
        # Not durable: a dev session's scratch; readers see old or new, never a mix.
        data = json.dumps(sorted(route_paths(app))).encode()
        write_atomic(target.routes_file, data, durable=False)
