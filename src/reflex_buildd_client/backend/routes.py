"""Which request paths belong to a Reflex backend: asked of its own router.

Reflex's backend is a Starlette app whose routes are its endpoints
(``/ping``, ``/_upload``, ``/_health``), a ``Mount`` of socket.io at
``/_event``, and, with ``api_transformer``, a FastAPI/Starlette app mounted
around it (its routes, routers added with ``include_router``, sub-apps,
``/docs``). FastAPI's ``include_router`` adds one route object without a
``path``, so no list of paths can describe it: each route object is asked,
as Starlette's router asks it, whether it matches.

The precedence is the one a server running the backend with the built
frontend mounted behind it has: a route of the backend that fully matches
wins; a route that matches the path but not the method wins too, except for
``GET``/``HEAD``, which the static files then answer (the frontend is a
catch-all for those); everything else is the static site's. Mounts at the
root (``Mount("", app)``) are looked into; one whose app has no routes to ask
(a bare ASGI callable) claims nothing, or it would claim every path.

Answers are memoized per (method, path), bounded, so a request costs one
dictionary lookup once its path has been seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["BackendRoutes", "routes_of"]

# Distinct (method, path) pairs remembered; hostile paths must not grow memory.
_MAX_MEMO = 4096
_SAFE_METHODS = frozenset({"GET", "HEAD"})


def routes_of(app: Any) -> Sequence[Any] | None:
    """The route objects of ``app`` (a Starlette app, router or middleware around one)."""
    for _ in range(16):  # middleware chains are short; never loop forever
        router = getattr(app, "router", None)
        if router is not None and isinstance(getattr(router, "routes", None), list):
            return router.routes  # type: ignore[no-any-return]
        if isinstance(getattr(app, "routes", None), list) and hasattr(app, "lifespan_context"):
            return app.routes  # type: ignore[no-any-return]
        inner = getattr(app, "app", None)
        if inner is None or inner is app:
            return None
        app = inner
    return None


def _is_root_mount(route: Any) -> bool:
    from starlette.routing import Mount

    return isinstance(route, Mount) and route.path == ""


def _match(routes: Sequence[Any], scope: dict[str, Any]) -> int:
    """2: a full match, 1: path matches but not the method, 0: none."""
    from starlette.routing import Match

    best = 0
    for route in routes:
        try:
            found, child = route.matches(scope)
        except Exception:  # a route that cannot judge this scope claims nothing
            continue
        if found == Match.NONE:
            continue
        if _is_root_mount(route):
            inner = routes_of(route.app)
            if inner is None:
                continue
            result = _match(inner, {**scope, **child})
        else:
            result = 2 if found == Match.FULL else 1
        if result == 2:
            return 2
        best = max(best, result)
    return best


class BackendRoutes:
    """Ask a backend's router whether it routes a request.

    Args:
        app: The backend's ASGI app (what ``rx.App()()`` returns).
    """

    def __init__(self, app: Any) -> None:
        self._routes = routes_of(app) or ()
        self._memo: dict[tuple[str, str], bool] = {}

    def owns(self, path: str, method: str = "GET") -> bool:
        """Whether ``path`` (below the prefix, ``""`` or ``/x``) goes to the backend."""
        memo_key = (method, path)
        if (known := self._memo.get(memo_key)) is not None:
            return known
        scope = {"type": "http", "path": path or "/", "root_path": "", "method": method}
        result = _match(self._routes, scope)
        owned = result == 2 or (result == 1 and method not in _SAFE_METHODS)
        if len(self._memo) >= _MAX_MEMO:
            self._memo.clear()
        self._memo[memo_key] = owned
        return owned
