"""The Reflex plugin of ``reflex-buildd dev``: the build's plugin, plus the route list.

It patches the frontend exactly as a build does (:class:`BuilddPlugin`: the
backend is found through the page's ``<meta>`` tag, under the prefix), and
after every (re)load of the app in the dev backend it writes the backend's
top-level route paths where the dev target says (``REFLEX_BUILDD_DEV``), so
the host's proxy knows which requests are the backend's (``api_transformer``
routes included) without loading the app itself.

A separate class, not a change to :class:`BuilddPlugin`: that file is hashed
into every build key, and dev mode must not change production keys.
"""

from __future__ import annotations

import json
from typing import Any

from reflex_buildd_client.settings import Settings
from reflex_buildd_client.store import write_atomic

from .plugin import BuilddPlugin

__all__ = ["DevPlugin", "route_paths"]


def route_paths(app: Any) -> set[str]:
    """The top-level paths of Reflex's backend app and of its ``api_transformer`` apps.

    A list, because the host's proxy cannot ask the app (it runs in another
    process). Route objects without a path of their own (FastAPI's
    ``include_router`` adds one) are looked into for theirs.
    """
    from reflex_buildd_client.backend_routes import routes_of

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
        else:
            pending.extend(_routes(route) or routes_of(getattr(route, "app", None)) or ())
    return {p for p in paths if p not in ("", "/")}


def _routes(routed: Any) -> list[Any]:
    routes = getattr(routed, "routes", None)
    return list(routes) if isinstance(routes, list | tuple) else []


class DevPlugin(BuilddPlugin):
    """:class:`BuilddPlugin` that also publishes the backend's routes for the host."""

    def post_compile(self, **context: Any) -> None:
        """Write the app's route paths where the host's proxy reads them.

        Args:
            context: Reflex passes the app as ``app``.
        """
        target = Settings.load().dev
        app = context.get("app")
        if target is None or target.routes_file is None or app is None:
            return
        # Not durable: a dev session's scratch; readers see old or new, never a mix.
        data = json.dumps(sorted(route_paths(app))).encode()
        write_atomic(target.routes_file, data, durable=False)
