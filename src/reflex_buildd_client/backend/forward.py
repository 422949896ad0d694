"""Forward ASGI requests to a backend listening on a Unix socket.

HTTP goes through httpx's transport over the socket (never its client: a
client keeps a cookie jar, which would carry one user's cookies into
another's request), streaming both ways: the request body as the client sends
it, the response as the backend produces it, bytes unchanged (no decoding of
``Content-Encoding``). Websockets go through the ``websockets`` library,
frames and close codes passed on unchanged in both directions.

What the backend sees: the path below the prefix (the caller has rewritten
the scope, as for the in-process backend), the client's headers and cookies,
and ``X-Forwarded-For`` / ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` from the
scope, which the child's server trusts (only the host can reach its socket).
Hop-by-hop headers stop here, as a proxy must drop them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from ..serve.http import send_plain
from ..types import Message, Receive, Scope, Send

__all__ = ["UnixForwarder"]

_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Set by the websocket client itself for its own handshake.
_WS_OWN = frozenset(
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
_FORWARDED = (b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host")
_INTERNAL = b"x-reflex-buildd-"


def _request_headers(scope: Scope, drop: frozenset[bytes]) -> list[tuple[bytes, bytes]]:
    headers = []
    host = b""
    for name, value in scope["headers"]:
        name = bytes(name).lower()
        if name == b"host":
            host = bytes(value)
        if name in drop or name in _FORWARDED or name.startswith(_INTERNAL):
            continue
        headers.append((name, bytes(value)))
    client = scope.get("client")
    if client:
        headers.append((b"x-forwarded-for", str(client[0]).encode("latin-1")))
    scheme = str(scope.get("scheme") or ("ws" if scope["type"] == "websocket" else "http"))
    proto = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    headers.append((b"x-forwarded-proto", proto.encode("latin-1")))
    if host:
        headers.append((b"x-forwarded-host", host))
    return headers


def _target(scope: Scope) -> bytes:
    raw = bytes(scope.get("raw_path") or str(scope["path"]).encode("utf-8"))
    query = bytes(scope.get("query_string", b""))
    return raw + (b"?" + query if query else b"")


class UnixForwarder:
    """Send ASGI HTTP and websocket scopes to the server on ``socket_path``."""

    def __init__(self, socket_path: str) -> None:
        import httpx

        self.socket_path = socket_path
        self._transport = httpx.AsyncHTTPTransport(uds=socket_path, retries=0)

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._transport.aclose()

    async def request(
        self,
        method: str,
        target: str,
        headers: list[tuple[bytes, bytes]] | None = None,
        body: bytes = b"",
    ) -> tuple[int, bytes]:
        """A small request of the host's own (not a client's): status and body."""
        import httpx

        request = httpx.Request(
            method, "http://reflex-backend" + target, headers=headers or [], content=body
        )
        response = await self._transport.handle_async_request(request)
        try:
            body = b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
        finally:
            await response.aclose()
        return response.status_code, body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)

    # -- HTTP ----------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        import httpx

        disconnected = asyncio.Event()

        async def body() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    disconnected.set()
                    return
                if chunk := message.get("body", b""):
                    yield chunk
                if not message.get("more_body", False):
                    return

        headers = _request_headers(scope, _HOP_BY_HOP)
        has_body = any(n in (b"content-length", b"transfer-encoding") for n, _ in scope["headers"])
        url = httpx.URL(scheme="http", host="reflex-backend", raw_path=_target(scope))
        request = httpx.Request(
            scope["method"], url, headers=headers, content=body() if has_body else b""
        )
        try:
            response = await self._transport.handle_async_request(request)
        except httpx.TransportError:
            await send_plain(send, 502, b"The Reflex backend is not reachable (restarting?)\n")
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (n.lower(), v)
                        for n, v in response.headers.raw
                        if n.lower() not in _HOP_BY_HOP
                    ],
                }
            )
            async for chunk in response.stream:  # type: ignore[union-attr]
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except httpx.TransportError:
            # The backend died mid-response: the client sees a cut stream,
            # as it would from the backend itself.
            return
        finally:
            await response.aclose()

    # -- websockets ----------------------------------------------------------

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        from websockets.asyncio.client import unix_connect
        from websockets.exceptions import ConnectionClosed, InvalidStatus

        first = await receive()
        if first["type"] != "websocket.connect":
            return
        protocols = [str(p) for p in scope.get("subprotocols", ())]
        try:
            upstream = await unix_connect(
                self.socket_path,
                "ws://reflex-backend" + _target(scope).decode("latin-1"),
                additional_headers=[
                    (n.decode("latin-1"), v.decode("latin-1"))
                    for n, v in _request_headers(scope, _HOP_BY_HOP | _WS_OWN)
                ],
                subprotocols=protocols or None,  # type: ignore[arg-type]
                compression=None,  # a local hop: deflate only costs CPU
                max_size=None,
                ping_interval=None,  # the client's own pings pass through as frames
                open_timeout=10,
            )
        except InvalidStatus:
            await send({"type": "websocket.close", "code": 1008})
            return
        except (TimeoutError, OSError):
            await send({"type": "websocket.close", "code": 1011})
            return
        accept: Message = {"type": "websocket.accept"}
        if upstream.subprotocol:
            accept["subprotocol"] = upstream.subprotocol
        await send(accept)

        async def client_to_backend() -> None:
            while True:
                message = await receive()
                if message["type"] == "websocket.receive":
                    if (text := message.get("text")) is not None:
                        await upstream.send(text)
                    else:
                        await upstream.send(message.get("bytes") or b"")
                elif message["type"] == "websocket.disconnect":
                    await upstream.close(
                        code=message.get("code", 1000), reason=message.get("reason") or ""
                    )
                    return

        async def backend_to_client() -> None:
            code, reason = 1000, ""
            try:
                async for data in upstream:
                    if isinstance(data, str):
                        await send({"type": "websocket.send", "text": data})
                    else:
                        await send({"type": "websocket.send", "bytes": data})
            except ConnectionClosed:
                pass
            if upstream.close_code is not None:
                code, reason = upstream.close_code, upstream.close_reason or ""
            elif upstream.close_code is None:
                code = 1011  # the backend went away without a close frame
            with contextlib.suppress(Exception):
                await send({"type": "websocket.close", "code": code, "reason": reason})

        tasks = {
            asyncio.ensure_future(client_to_backend()),
            asyncio.ensure_future(backend_to_client()),
        }
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            for task in done:
                with contextlib.suppress(ConnectionClosed, OSError):
                    task.result()
        finally:
            await upstream.close()
