"""Forward ASGI requests to a backend listening on a Unix socket (process mode).

:class:`UnixForwarder` is the whole face the supervisor (:mod:`.process`)
sees: one per child socket, an ASGI app that forwards one HTTP request or
one websocket session, :meth:`~UnixForwarder.request` for the host's own
small requests, and :meth:`~UnixForwarder.aclose`. Every wait on the child is
bounded (:mod:`.bounds`).

HTTP goes over kept-alive connections (:mod:`.upstream`, :mod:`.h1`),
streaming both ways: the request body as the client sends it, the response as
the backend produces it, bytes unchanged (no decoding of
``Content-Encoding``). Websockets go through :mod:`.wsforward`.

What the backend sees: the path below the prefix (the caller has rewritten
the scope, as for the in-process backend), the client's headers and cookies,
and ``X-Forwarded-For`` / ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` from the
scope, which the child's server trusts (only the host can reach its socket).
Neither direction carries hop-by-hop headers or those ``Connection`` names
(RFC 9110 §7.6.1); the child's ``Date`` and ``Server`` stay behind too, since
the host's own server sends its own.

How a request's body is framed (RFC 9112 §6.3): the host's server has already
de-chunked it, so the forwarder frames it anew: with the length of a body
that arrived in one piece, the client's ``Content-Length`` while it streams,
chunked otherwise. A request with both ``Content-Length`` and
``Transfer-Encoding`` is refused with 400, as the RFC says such a message
"ought to be handled as an error" (it is the shape of request smuggling; Node's
llhttp refuses it too). A body that ends early (the client went away) aborts
the connection to the child: the child's app sees a client disconnect, as it
would under ``reflex run``.

Failures, each logged once per incident (:class:`.bounds.Incidents`): 503
when the child's socket takes no connection, 504 when it does not answer
within the bound, 502 when it closes the connection or answers garbage.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from ..serve.http import send_plain
from ..types import Receive, Scope, Send
from .bounds import Bounds, Incidents
from .h1 import UpstreamProtocolError, end_to_end, request_head
from .upstream import (
    BackendTimeoutError,
    BackendUnreachableError,
    Reply,
    Upstream,
    UpstreamClosedError,
)

__all__ = ["Bounds", "UnixForwarder", "forwarded_headers"]

# Framing is the forwarder's own; Expect was answered by the host's server.
_REQUEST_DROP = frozenset({b"content-length", b"expect"})
# The host's server sends its own.
_RESPONSE_DROP = frozenset({b"date", b"server"})
_FORWARDED = frozenset({b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"})
_INTERNAL = b"x-reflex-buildd-"
_BAD_FRAMING = b"Bad request: both Content-Length and Transfer-Encoding\n"
_BAD_LENGTH = b"Bad request: invalid Content-Length\n"


class _ClientGone(Exception):
    """The client went away before its request body ended."""


class _Refused(Exception):
    """A request the forwarder will not pass on: 400 with this text."""


def forwarded_headers(
    scope: Scope, drop: frozenset[bytes] = frozenset()
) -> list[tuple[bytes, bytes]]:
    """The client's end-to-end headers, and ``X-Forwarded-*`` from the scope.

    The client's own ``X-Forwarded-*`` and the host's internal headers never
    pass: the child's server believes what these say.
    """
    headers = end_to_end(
        [(bytes(n).lower(), bytes(v)) for n, v in scope["headers"]], drop | _FORWARDED
    )
    headers = [(n, v) for n, v in headers if not n.startswith(_INTERNAL)]
    host = next((v for n, v in headers if n == b"host"), b"")
    if client := scope.get("client"):
        headers.append((b"x-forwarded-for", str(client[0]).encode("latin-1")))
    scheme = str(scope.get("scheme") or ("ws" if scope["type"] == "websocket" else "http"))
    proto = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    headers.append((b"x-forwarded-proto", proto.encode("latin-1")))
    if host:
        headers.append((b"x-forwarded-host", host))
    return headers


def target_of(scope: Scope) -> bytes:
    """The request target to send on: the raw path and the query."""
    raw = bytes(scope.get("raw_path") or str(scope["path"]).encode("utf-8"))
    query = bytes(scope.get("query_string", b""))
    return raw + (b"?" + query if query else b"")


def _body_framing(scope: Scope) -> tuple[bytes | None, bool]:
    """The client's ``Content-Length`` (None: none) and whether it sent chunked.

    Raises:
        _Refused: Both at once, or a malformed length.
    """
    length: bytes | None = None
    chunked = False
    for name, value in scope["headers"]:
        name = bytes(name).lower()
        if name == b"content-length":
            given = bytes(value).strip()
            if not given.isdigit() or (length is not None and length != given):
                raise _Refused(_BAD_LENGTH)
            length = given
        elif name == b"transfer-encoding":
            chunked = True
    if chunked and length is not None:
        raise _Refused(_BAD_FRAMING)
    return length, chunked


async def _rest(receive: Receive, chunked: bool) -> AsyncIterator[bytes]:
    """The rest of a streaming request body, framed for the wire."""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _ClientGone
        more = message.get("more_body", False)
        if data := message.get("body", b""):
            yield b"%x\r\n%b\r\n" % (len(data), data) if chunked else data
        if not more:
            if chunked:
                yield b"0\r\n\r\n"
            return


async def _until_gone(receive: Receive, reply: Reply) -> None:
    """Abort ``reply`` when the client disconnects (the request body was read already)."""
    with contextlib.suppress(Exception):  # a server's receive that fails: nothing to watch
        while (await receive())["type"] != "http.disconnect":
            pass
        reply.abort()


class UnixForwarder:
    """Send ASGI HTTP and websocket scopes to the server on ``socket_path``.

    Args:
        socket_path: The child's Unix socket.
        bounds: How long each wait on the child may take.
    """

    def __init__(self, socket_path: str, bounds: Bounds | None = None) -> None:
        self.socket_path = socket_path
        self.bounds = bounds or Bounds()
        self._upstream = Upstream(socket_path, self.bounds)
        self._incidents = Incidents(f"the backend process on {socket_path}")

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._upstream.aclose()

    async def request(
        self,
        method: str,
        target: str,
        headers: list[tuple[bytes, bytes]] | None = None,
        body: bytes = b"",
    ) -> tuple[int, bytes]:
        """A small request of the host's own (not a client's): status and body.

        Raises:
            BackendUnreachableError: The socket takes no connection within the bound.
            BackendTimeoutError: No answer within the bound.
            UpstreamClosedError: The child closed the connection before answering.
            UpstreamProtocolError: The answer is not HTTP/1.1.
        """
        sent = [(b"host", b"reflex-backend"), *(headers or [])]
        if body or method not in ("GET", "HEAD"):
            sent.append((b"content-length", str(len(body)).encode()))
        head = request_head(method, target.encode("latin-1"), sent)
        return await self._upstream.request(method, head, body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            from .wsforward import forward_websocket

            await forward_websocket(self, scope, receive, send)

    def failed(self, status: int, exc: Exception) -> bytes:
        """Count a request that failed with ``status`` (logged once per incident); its text."""
        if status == 503:
            reason, text = f"is unreachable ({exc})", b"The Reflex backend is not reachable"
        elif status == 504:
            reason = f"did not answer within {self.bounds.response:g}s"
            text = b"The Reflex backend did not answer in time"
        else:
            reason, text = f"gave no valid answer ({exc})", b"The Reflex backend gave no answer"
        self._incidents.failed(status, reason)
        return text + b" (see the host's log)\n"

    def answered(self) -> None:
        """The child answered: ends an incident."""
        self._incidents.answered()

    @property
    def failing_since(self) -> float | None:
        """``time.monotonic()`` of the first failed request with no answer since; None if none.

        For the supervisor: a child failing for longer than it tolerates is stuck.
        """
        return self._incidents.since

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            length, chunked = _body_framing(scope)
        except _Refused as refused:
            await send_plain(send, 400, refused.args[0])
            return
        headers = forwarded_headers(scope, _REQUEST_DROP)
        body, rest = b"", None
        if length is not None or chunked:
            try:
                body, rest = await _request_body(receive, headers, length)
            except _ClientGone:
                return
        method = scope["method"]
        try:
            head = request_head(method, target_of(scope), headers)
            reply = await self._upstream.exchange(method, head, body, rest)
        except _ClientGone:
            return  # nobody to answer; the child saw its connection close
        except (BackendUnreachableError, BackendTimeoutError) as exc:
            status = 503 if isinstance(exc, BackendUnreachableError) else 504
            await send_plain(send, status, self.failed(status, exc))
            return
        except (UpstreamClosedError, UpstreamProtocolError) as exc:
            await send_plain(send, 502, self.failed(502, exc))
            return
        self._incidents.answered()
        await _relay(reply, receive, send)


async def _request_body(
    receive: Receive, headers: list[tuple[bytes, bytes]], length: bytes | None
) -> tuple[bytes, AsyncIterator[bytes] | None]:
    """The body's first bytes and the rest (framed for the wire); adds the framing header.

    Raises:
        _ClientGone: The client left before sending any of it.
    """
    message = await receive()
    if message["type"] != "http.request":
        raise _ClientGone
    body = message.get("body", b"")
    if not message.get("more_body", False):
        # All of it at once: sent with its own length, whatever the client framed.
        headers.append((b"content-length", b"%d" % len(body)))
        return body, None
    if length is not None:
        headers.append((b"content-length", length))
        return body, _rest(receive, chunked=False)
    headers.append((b"transfer-encoding", b"chunked"))
    return (b"%x\r\n%b\r\n" % (len(body), body) if body else b""), _rest(receive, chunked=True)


async def _relay(reply: Reply, receive: Receive, send: Send) -> None:
    """Send the child's answer on as it is read; always ends ``reply``."""
    # A long answer stops when its client goes: servers (uvicorn) drop what
    # is sent after a disconnect, so nothing else would end an endless stream.
    watch = asyncio.ensure_future(_until_gone(receive, reply)) if reply.streams else None
    try:
        await send(
            {
                "type": "http.response.start",
                "status": reply.head.status,
                "headers": end_to_end(reply.head.headers, _RESPONSE_DROP),
            }
        )
        more = True
        async for data in reply.chunks():
            more = not reply.at_end
            await send({"type": "http.response.body", "body": data, "more_body": more})
        if more:
            await send({"type": "http.response.body", "body": b""})
    except (BackendTimeoutError, UpstreamClosedError, UpstreamProtocolError):
        # The child stopped or died mid-answer (or the client left): the
        # client sees a cut stream, as it would from the child itself.
        return
    finally:
        if watch is not None:
            watch.cancel()
        reply.finish()
