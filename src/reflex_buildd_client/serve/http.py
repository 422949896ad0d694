"""The host's small HTTP vocabulary: the facts of a request, a decided response, sending it.

The static site decides a :class:`Response` from a :class:`Request` without I/O; the mount,
the redirect, the process-mode forwarder and the dev proxy send their own short answers
(errors, refusals) through :func:`send_plain`. One place, so every part answers alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ..types import Scope, Send

__all__ = [
    "Headers",
    "Request",
    "Response",
    "plain_response",
    "request_of",
    "send_plain",
    "send_plain_any",
    "send_response",
]

Headers = tuple[tuple[bytes, bytes], ...]


class Request(NamedTuple):
    """The facts of a request that a static response depends on.

    Attributes:
        method: ``GET``, ``HEAD``, ...
        path: Below the prefix: ``""``, ``"/about"``, ``"/assets/x.js"``.
        accept_encoding: The ``Accept-Encoding`` value, if sent (as for the rest).
        if_none_match: ``If-None-Match``.
        range: ``Range``.
        if_range: ``If-Range``.
    """

    method: str
    path: str
    accept_encoding: bytes | None = None
    if_none_match: bytes | None = None
    range: bytes | None = None
    if_range: bytes | None = None

    @classmethod
    def from_scope(cls, scope: Scope, path: str) -> Request:
        """The facts of an HTTP scope, with ``path`` below the prefix; one pass over the headers."""
        return request_of(scope, path)


_new_request = tuple.__new__


def request_of(scope: Scope, path: str) -> Request:
    """:meth:`Request.from_scope`, without a method lookup per request (the hot path)."""
    accept = inm = ranges = if_range = None
    for name, value in scope["headers"]:
        if name == b"accept-encoding":
            accept = value
        elif name == b"if-none-match":
            inm = value
        elif name == b"range":
            ranges = value
        elif name == b"if-range":
            if_range = value
    # tuple.__new__ directly: the generated __new__ costs a Python call per request.
    return _new_request(Request, (scope["method"], path, accept, inm, ranges, if_range))  # type: ignore[no-any-return]


class Response(NamedTuple):
    """A response to send: status, headers (as ASGI wants them) and the body."""

    status: int
    headers: Headers
    body: bytes


def plain_response(status: int, text: bytes, extra: Headers = ()) -> Response:
    """A short ``text/plain`` response (errors the host answers itself)."""
    headers = (
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(text)).encode("ascii")),
        *extra,
    )
    return Response(status, headers, text)


async def send_plain(send: Send, status: int, text: bytes, extra: Headers = ()) -> None:
    """Send a short ``text/plain`` answer of the host's own (errors, refusals)."""
    await send_response(send, plain_response(status, text, extra))


async def send_plain_any(scope: Scope, send: Send, status: int, text: bytes) -> None:
    """:func:`send_plain` for an HTTP request or a websocket handshake.

    A handshake gets the status as its HTTP response where the server offers
    ASGI's ``websocket.http.response`` extension (uvicorn does), else a close
    before accept (the server answers 403): never an app that returns without
    answering, which servers report as a 500.
    """
    if scope["type"] == "http":
        await send_plain(send, status, text)
    elif "websocket.http.response" in (scope.get("extensions") or {}):
        _status, headers, body = plain_response(status, text)
        await send(
            {"type": "websocket.http.response.start", "status": status, "headers": list(headers)}
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1011})


# Set by metrics_app() (:mod:`reflex_buildd_client.exposition`) in a host that
# counts; None (one test per response) everywhere else.
count_served: Callable[[int, Headers], None] | None = None


async def send_response(send: Send, response: Response) -> None:
    """Send a decided response: start and body (counted when metrics are on)."""
    status, headers, body = response
    if count_served is not None:
        count_served(status, headers)
    # A fresh list: middleware may mutate message["headers"] in place.
    await send({"type": "http.response.start", "status": status, "headers": list(headers)})
    await send({"type": "http.response.body", "body": body})
