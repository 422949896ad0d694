"""The redirect from a mount's bare path to its prefix with a slash (``/admin`` -> ``/admin/``).

Hosts route ``/admin`` apart from ``/admin/...`` (Starlette's ``Mount``
matches only the latter, and a host catch-all would take the former), so
:func:`reflex_buildd_client.mount` adds a route that sends the browser on.
Where it sends it is decided by the one prefix rule (:mod:`.prefix`), as for
every URL in the pages: ``public_url``, then ``root_path`` with a trusted
proxy's ``X-Forwarded-Prefix``. The ``Location`` is a path, never an absolute
URL: an absolute one needs a host, and the only host a request names is its
``Host`` header, which any client sets (``Host: evil.com`` would send the
browser to evil.com). The browser resolves the path against the URL it asked
for, which is the public one, so a path is also right behind every proxy.
"""

from __future__ import annotations

from ..errors import InvalidPathError
from ..types import Receive, Scope, Send
from .http import Response, plain_response, send_response
from .prefix import ProxyConfig, resolve_location

__all__ = ["SlashRedirect", "slash_redirect"]

# 307, not 301/308: browsers cache permanent redirects, and the mount's place
# (a proxy's prefix, a public URL) may change between deployments.
_STATUS = 307
_BAD_FORWARDED = plain_response(400, b"Bad forwarded prefix, proto or host\n")
# A query string is kept only when it can be sent back verbatim in a header:
# visible ASCII, bounded (servers refuse longer request lines anyway).
_MAX_QUERY = 4096


def _query(scope: Scope) -> bytes:
    query = bytes(scope.get("query_string") or b"")
    if not query or len(query) > _MAX_QUERY or not all(0x21 <= c <= 0x7E for c in query):
        return b""
    return b"?" + query


def slash_redirect(scope: Scope, config: ProxyConfig, mount_path: str) -> Response:
    """The response to a request for the bare ``mount_path`` (``"/admin"``), decided without I/O.

    Args:
        scope: The host's HTTP scope of the request (its ``root_path`` is the
            host's, without the mount path).
        config: The mount's prefix settings.
        mount_path: The normalized mount path (``"/admin"``).

    Returns:
        307 to ``<prefix>/`` (the query string kept), or 400 if a trusted
        proxy sent a malformed forwarded header.
    """
    # The mount's own view of the request: what Starlette's Mount gives it.
    inner = dict(scope)
    inner["root_path"] = str(scope.get("root_path", "")).rstrip("/") + mount_path
    try:
        location = resolve_location(inner, config)
    except InvalidPathError:
        return _BAD_FORWARDED  # never echoed: the value may be hostile
    # The prefix passed the segment rule: it starts with one "/", never "//"
    # (which a browser would read as another host), and needs no escaping.
    target = location.prefix.encode("ascii") + b"/" + _query(scope)
    return Response(_STATUS, ((b"location", target), (b"content-length", b"0")), b"")


class SlashRedirect:
    """A plain ASGI app answering the bare mount path with :func:`slash_redirect`.

    Args:
        mount_path: The normalized mount path (``"/admin"``).
        config: The mount's prefix settings.
    """

    def __init__(self, mount_path: str, config: ProxyConfig) -> None:
        self.mount_path = mount_path
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await send_response(send, slash_redirect(scope, self.config, self.mount_path))
