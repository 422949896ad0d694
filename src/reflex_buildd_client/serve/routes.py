"""Pure matching of request paths against a Reflex app's page routes.

Reflex writes its route table to ``.web/routes.json`` (``"index"``,
``"post/[pid]"``, ``"docs/[...slug]"``, ``"[[...all]]"``); the artifact keeps
it in its manifest. A path that matches a route is a page (status 200, the
client router renders it); anything else gets the app's 404 page with 404.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["RouteTable"]

_OPTIONAL_CATCH_ALL = re.compile(r"^\[\[\.\.\.[^\]/]+\]\]$")
_CATCH_ALL = re.compile(r"^\[\.\.\.[^\]/]+\]$")
_DYNAMIC = re.compile(r"^\[[^\]/]+\]$")


def _segment_regex(segment: str) -> str:
    if _OPTIONAL_CATCH_ALL.match(segment):
        return r"(?:/.*)?"
    if _CATCH_ALL.match(segment):
        return r"/.+"
    if _DYNAMIC.match(segment):
        return r"/[^/]+"
    return "/" + re.escape(segment)


def _route_regex(route: str) -> str:
    route = route.strip("/")
    if route in ("", "index"):
        return ""
    return "".join(_segment_regex(seg) for seg in route.split("/"))


class RouteTable:
    """The page routes of one app, compiled once."""

    def __init__(self, routes: Iterable[str]) -> None:
        patterns = [_route_regex(r) for r in routes if r.strip("/") != "404"]
        self.routes = tuple(routes)
        self._regex = re.compile("^(?:" + "|".join(patterns or ["(?!)"]) + ")/?$")

    def match(self, path: str) -> bool:
        """Whether ``path`` (``""`` or ``"/about"``, no prefix) is one of the pages."""
        return self._regex.match(path) is not None
