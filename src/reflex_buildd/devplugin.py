"""The Reflex plugin of ``reflex-buildd dev``: the build's plugin, plus the route list.

It patches the frontend exactly as a build does (:class:`BuilddPlugin`: the
backend is found through the page's ``<meta>`` tag, under the prefix), and
after every (re)load of the app in the dev backend it writes the backend's
top-level route paths to ``REFLEX_BUILDD_DEV_ROUTES``, so the host's proxy
knows which requests are the backend's (``api_transformer`` routes included)
without loading the app itself.

A separate class, not a change to :class:`BuilddPlugin`: that file is hashed
into every build key, and dev mode must not change production keys.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .plugin import BuilddPlugin

__all__ = ["ROUTES_ENV", "DevPlugin"]

ROUTES_ENV = "REFLEX_BUILDD_DEV_ROUTES"


class DevPlugin(BuilddPlugin):
    """:class:`BuilddPlugin` that also publishes the backend's routes for the host."""

    def post_compile(self, **context: Any) -> None:
        """Write the app's route paths where the host's proxy reads them.

        Args:
            context: Reflex passes the app as ``app``.
        """
        target = os.environ.get(ROUTES_ENV)
        app = context.get("app")
        if not target or app is None:
            return
        from reflex_buildd_client.backend import _route_paths

        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(sorted(_route_paths(app))))
        # Atomic: the host reads it whenever its stat changes.
        os.replace(tmp, path)
