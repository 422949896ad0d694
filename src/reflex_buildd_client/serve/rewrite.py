"""Pure byte rewrites applied once per (artifact, prefix) at serve time.

Builds are made with ``frontend_path`` set to :data:`SENTINEL`; Reflex and vite
then write ``/__RXBUILDD_PREFIX__`` wherever the mount path belongs (HTML,
the route manifest, CSS ``url()``, ``rx.asset`` strings, the router basename).
Replacing that one byte string with the real prefix makes the artifact serve
under any path. Every occurrence carries the leading slash, so the root mount
is the empty string and ``/__RXBUILDD_PREFIX__/assets/x.js`` becomes
``/assets/x.js``.
"""

from __future__ import annotations

import html
import re

from ..errors import InvalidPathError
from .prefix import normalize_mount_path

__all__ = [
    "META_NAME",
    "SENTINEL",
    "SENTINEL_BYTES",
    "has_icon_link",
    "icon_link",
    "inject_meta",
    "meta_tag",
    "no_icon_link",
    "replace_sentinel",
]

SENTINEL = "/__RXBUILDD_PREFIX__"
SENTINEL_BYTES = SENTINEL.encode("ascii")

# The name the frontend patch (reflex_buildd.plugin) looks up.
META_NAME = "reflex-buildd"

_HEAD_OPEN = re.compile(rb"<head(?:\s[^>]*)?>", re.IGNORECASE)


def replace_sentinel(data: bytes, prefix: str) -> bytes:
    """Put ``prefix`` ("" for the root, else "/a/b") where the build put the sentinel.

    The sentinel sits in HTML attributes, inline scripts, JS strings and CSS
    ``url()``s, where nothing can be escaped for every context at once; so the
    prefix must pass the segment rule, whose characters end none of them.

    Raises:
        InvalidPathError: If ``prefix`` is not a normalized, valid prefix.
    """
    if prefix and normalize_mount_path(prefix, what="prefix") != prefix:
        raise InvalidPathError(f"prefix {prefix!r:.80} is not normalized")
    return data.replace(SENTINEL_BYTES, prefix.encode("utf-8"))


def meta_tag(prefix: str, backend: str = "") -> bytes:
    """The tag that tells the frontend its prefix and backend at run time.

    Both values are escaped for a double-quoted attribute: they may come from
    request headers and must never be able to add markup.
    """
    attrs = (
        f'name="{META_NAME}" '
        f'data-prefix="{html.escape(prefix, quote=True)}" '
        f'data-backend="{html.escape(backend, quote=True)}"'
    )
    return f"<meta {attrs}>".encode()


def icon_link(prefix: str) -> bytes:
    """A ``<link rel="icon">`` under the prefix.

    Without one, browsers ask the origin's root for ``/favicon.ico``: outside
    the mount, where the host answers (or a 404 lands in the console).
    """
    return f'<link rel="icon" href="{html.escape(prefix, quote=True)}/favicon.ico">'.encode()


def no_icon_link() -> bytes:
    """An empty icon, for an app that ships no ``favicon.ico``.

    Without any link the browser still asks the origin's root, outside the
    mount; an empty ``data:`` URL satisfies it without a request.
    """
    return b'<link rel="icon" href="data:,">'


def has_icon_link(document: bytes) -> bool:
    """Whether the page already declares its icon."""
    return re.search(rb"<link[^>]*\brel=[\"']?(?:shortcut )?icon\b", document, re.I) is not None


def inject_meta(document: bytes, tag: bytes) -> bytes:
    """Insert ``tag`` right after ``<head ...>`` (or at the start if there is none).

    It must come before any module script so the frontend can read it while
    its modules evaluate.
    """
    match = _HEAD_OPEN.search(document)
    if match is None:
        return tag + document
    return document[: match.end()] + tag + document[match.end() :]
