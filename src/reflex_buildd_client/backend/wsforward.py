"""One websocket session forwarded to the backend child, through ``websockets``.

Frames pass unchanged both ways. The opening waits are bounded like an HTTP
request's (:mod:`.bounds`): a socket that takes no connection gets the
browser a 503, a handshake the child does not answer in time a 504 (as an
HTTP answer to the upgrade request where the server offers ASGI's
``websocket.http.response``, uvicorn does; a refused handshake elsewhere),
and a handshake the child refuses passes on with the child's own status.

Close codes are the one thing not passed on verbatim, because two of them only
*describe* a closed socket and may never be sent (RFC 6455 §7.4.1):

- the browser's side: 1005 (a close frame without a code, what a browser
  sends when it navigates away) goes upstream as 1000, and 1006 (the
  connection dropped without a close frame) as 1001, "going away";
- the child's side: a close frame without a code reaches the browser as
  1000; a connection that ends without any close frame (the child died)
  reaches it as 1011, so its client reconnects, as ``reflex-buildd dev``'s
  proxy does for a reloading backend.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from ..types import Message, Receive, Scope, Send
from .upstream import BackendTimeoutError, BackendUnreachableError, connect_unix

if TYPE_CHECKING:
    from .forward import UnixForwarder

__all__ = ["forward_websocket", "onward_code"]

# Set by the websocket client itself for its own handshake.
_HANDSHAKE = frozenset(
    {
        b"host",
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
        b"sec-websocket-accept",
        b"content-length",
    }
)
# The codes an endpoint may send in a close frame (RFC 6455 §7.4, IANA registry).
_SENDABLE = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


def onward_code(code: int | None, *, dropped: int) -> int:
    """The close code to send on for a close seen as ``code``.

    ``None`` and 1005 (no code in the frame) become 1000; 1006 (no frame at
    all) becomes ``dropped``; any other code that may not be sent becomes 1000.
    """
    if code == 1006:
        return dropped
    if code is not None and (code in _SENDABLE or 3000 <= code <= 4999):
        return code
    return 1000


async def forward_websocket(
    forwarder: UnixForwarder, scope: Scope, receive: Receive, send: Send
) -> None:
    """Forward one websocket session (see the module docstring)."""
    from websockets.exceptions import InvalidHandshake, InvalidStatus

    first = await receive()
    if first["type"] != "websocket.connect":
        return
    try:
        upstream = await _open(forwarder, scope)
    except (BackendUnreachableError, BackendTimeoutError) as exc:
        status = 503 if isinstance(exc, BackendUnreachableError) else 504
        await _deny(scope, send, status, forwarder.failed(status, exc))
        return
    except InvalidStatus as exc:
        forwarder.answered()
        await _deny(scope, send, exc.response.status_code, bytes(exc.response.body or b""))
        return
    except (InvalidHandshake, OSError, EOFError) as exc:
        await _deny(scope, send, 502, forwarder.failed(502, exc))
        return
    forwarder.answered()
    accept: Message = {"type": "websocket.accept"}
    if upstream.subprotocol:
        accept["subprotocol"] = upstream.subprotocol
    try:
        await send(accept)
        await _pump(upstream, receive, send)
    finally:
        upstream.transport.abort()  # after a closing handshake: nothing left to say


async def _open(forwarder: UnixForwarder, scope: Scope) -> Any:
    """Connect within the connect bound, then shake hands within the response bound."""
    from websockets.asyncio.client import connect

    from .forward import forwarded_headers, target_of

    bounds = forwarder.bounds
    sock = await connect_unix(forwarder.socket_path, bounds.connect)
    protocols = [str(p) for p in scope.get("subprotocols", ())]
    headers = forwarded_headers(scope, _HANDSHAKE)
    try:
        return await connect(
            "ws://reflex-backend" + target_of(scope).decode("latin-1"),
            sock=sock,
            additional_headers=[(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers],
            user_agent_header=None,
            subprotocols=protocols or None,  # type: ignore[arg-type]
            compression=None,  # a local hop: deflate only costs CPU
            max_size=None,
            ping_interval=None,  # the browser's own pings pass through as frames
            open_timeout=bounds.response,
        )
    except TimeoutError:
        # websockets has aborted the transport, which owns (and closed) the socket.
        raise BackendTimeoutError(f"no handshake within {bounds.response:g}s") from None


async def _deny(scope: Scope, send: Send, status: int, body: bytes) -> None:
    """Refuse the handshake: with an HTTP status where the server can send one."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(body)),
        ]
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1011})


async def _pump(upstream: Any, receive: Receive, send: Send) -> None:
    """Frames both ways until either side closes; the close passed on as described above."""
    from websockets.exceptions import ConnectionClosed

    async def client_to_backend() -> None:
        with contextlib.suppress(ConnectionClosed):  # the child went: reported below
            while True:
                message = await receive()
                if message["type"] == "websocket.receive":
                    text = message.get("text")
                    await upstream.send(text if text is not None else message.get("bytes") or b"")
                elif message["type"] == "websocket.disconnect":
                    code = onward_code(message.get("code"), dropped=1001)
                    await upstream.close(code=code, reason=message.get("reason") or "")
                    return

    async def backend_to_client() -> None:
        try:
            async for data in upstream:
                key = "text" if isinstance(data, str) else "bytes"
                await send({"type": "websocket.send", key: data})
        except ConnectionClosed:
            pass
        except OSError:
            return  # the browser went away mid-send: its disconnect closes upstream
        received = upstream.protocol.close_rcvd
        code = 1011 if received is None else onward_code(received.code, dropped=1011)
        reason = "" if received is None else received.reason
        with contextlib.suppress(Exception):  # the browser may be gone already
            await send({"type": "websocket.close", "code": code, "reason": reason})

    to_backend = asyncio.ensure_future(client_to_backend())
    to_client = asyncio.ensure_future(backend_to_client())
    try:
        await asyncio.wait({to_backend, to_client}, return_when=asyncio.FIRST_COMPLETED)
        if to_backend.done() and not to_client.done():
            # The browser left (upstream now closed) or the child did: either
            # way the other pump ends by itself, and the child's close code
            # reaches the browser if it is still there.
            await to_client
    finally:
        for task in (to_backend, to_client):
            task.cancel()
        for task in (to_backend, to_client):
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed, OSError):
                await task
