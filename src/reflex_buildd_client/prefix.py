"""The one prefix rule, as pure functions.

The prefix a mounted app is served under is the ASGI ``root_path`` the host
gives it: Starlette's ``Mount`` sets it to the parent's ``root_path`` plus the
mount path, uvicorn's ``--root-path`` adds what a proxy strips. It is
normalised to ``""`` (the root) or ``"/a/b"`` (leading slash, no trailing
slash), the form :func:`reflex_buildd_client.rewrite.replace_sentinel` takes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import InvalidPathError

__all__ = ["normalize_mount_path", "prefix_of", "relative_path"]

# RFC 3986 path characters without '%' (a prefix is compared and embedded
# decoded, so escapes would only hide what it is).
_SEGMENT = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=:@-]+$")


def normalize_mount_path(path: str) -> str:
    """Validate a mount path given by a developer; ``"/"`` becomes ``""``.

    Raises:
        InvalidPathError: If it is not absolute or has empty, dot or odd segments.
    """
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidPathError(f"mount path must start with '/': {path!r}")
    stripped = path.strip("/")
    if not stripped:
        return ""
    for segment in stripped.split("/"):
        if segment in ("", ".", "..") or not _SEGMENT.match(segment):
            raise InvalidPathError(f"invalid segment {segment!r} in mount path {path!r}")
    return "/" + stripped


def prefix_of(scope: Mapping[str, Any]) -> str:
    """The prefix of a request: its ``root_path``, as ``""`` or ``"/a/b"``."""
    stripped = str(scope.get("root_path", "")).strip("/")
    return "/" + stripped if stripped else ""


def relative_path(scope: Mapping[str, Any]) -> str:
    """The request path below the prefix (``""`` for the prefix itself).

    Hosts differ: Starlette keeps the full path in ``path``; others strip the
    prefix. Like Starlette's ``get_route_path``, strip it only when present.
    """
    path = str(scope.get("path", ""))
    root = prefix_of(scope)
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root) :]
    return path
