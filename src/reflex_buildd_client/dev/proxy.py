"""Dev mode inside the host: a mount forwards to ``reflex-buildd dev``'s servers.

``reflex-buildd dev`` runs Reflex's own dev loop (the Vite dev server and
Reflex's reloading backend, both on 127.0.0.1) beside the host, and tells the
host where they are through ``REFLEX_BUILDD_DEV`` (:mod:`.target`). A mount
whose project is the one named there serves nothing from the cache; it
forwards:

- requests for the backend's routes (``/_event``, ``/_upload``, ``/ping``, any
  ``api_transformer`` route) and the event websocket to the backend, with the
  prefix taken off, as a prebuilt mount does;
- everything else, the HMR websocket included, to Vite, prefix kept: Vite
  serves the app with the prefix as its ``base``. The browser's ``Host``
  goes along, so Vite's own check of it (``server.allowedHosts``, set from
  Reflex's ``vite_allowed_hosts``) keeps refusing DNS-rebinding requests
  with 403, as it does under ``reflex run``. Pages get the same
  ``<meta name="reflex-buildd">`` tag as prebuilt pages, so the frontend
  reaches its backend under the prefix too.

The backend's route list comes from the backend itself: the dev plugin writes
it to a file on every (re)load, read here again whenever it changes.

Mounts of other projects serve their verified artifacts as always.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..serve.http import send_plain
from ..serve.prefix import is_safe_path, prefix_of, relative_path
from ..serve.rewrite import has_icon_link, icon_link, inject_meta, meta_tag
from ..types import Receive, Scope, Send
from .target import DevTarget

if TYPE_CHECKING:
    import httpx
    from websockets.asyncio.client import ClientConnection

__all__ = ["DEFAULT_BACKEND_PATHS", "DevProxy", "active_proxies", "start_dev_proxy"]

# Reflex's own endpoints (reflex_base.constants.Endpoint), used until the
# backend has written its real list (which adds api_transformer routes).
DEFAULT_BACKEND_PATHS = frozenset(
    {"/_event", "/_upload", "/ping", "/_health", "/_all_routes", "/auth-codespace"}
)
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# What a proxied websocket handshake carries on (the rest is the handshake's own).
_WS_FORWARD = frozenset({b"cookie", b"authorization", b"user-agent", b"accept-language"})
_SENDABLE = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})
_SAFE_CHARS = "/:@!$&'()*+,;=-._~"
# Pages from Vite are a few kB; anything bigger is streamed without the tag.
_MAX_HTML = 8 * 1024 * 1024

# The dev servers' answers change with every save: never cached.
_NO_STORE = ((b"cache-control", b"no-store"),)


class _Routes:
    """The backend's top-level paths, re-read when its file changes (dev only)."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._stamp: tuple[int, int] | None = None
        self.paths: frozenset[str] = DEFAULT_BACKEND_PATHS

    def current(self) -> frozenset[str]:
        if self._path is None:
            return self.paths
        try:
            stat = self._path.stat()
        except OSError:
            return self.paths
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            try:
                listed = json.loads(self._path.read_text())
                self.paths = frozenset(str(p) for p in listed) | DEFAULT_BACKEND_PATHS
                self._stamp = stamp
            except (OSError, ValueError, TypeError):
                pass  # unreadable: keep the last good list, read again next time
        return self.paths


def _owns(paths: frozenset[str], path: str) -> bool:
    return any(path == base or path.startswith(base + "/") for base in paths)


def _close_code(code: int | None) -> int:
    """A close code that may be sent on (1005 and 1006 only describe a closed socket)."""
    if code is None or code == 1005:
        return 1000
    if code in _SENDABLE or 3000 <= code <= 4999:
        return code
    return 1011  # the dev server went away (a reload): the client reconnects


class DevProxy:
    """The ASGI app a mount becomes in dev mode (see the module docstring)."""

    def __init__(self, target: DevTarget) -> None:
        self.target = target
        self._routes = _Routes(target.routes_file)
        self._client: Any = None
        favicon = target.project / "assets" / "favicon.ico"
        self._icon = icon_link(target.prefix) if favicon.is_file() else b""

    async def start(self) -> None:
        """Open the connection pool (one for the host's lifetime)."""
        import httpx  # Reflex depends on it; only dev mode needs it here

        # A transport, not a client: a client keeps a cookie jar, which would
        # carry one browser's cookies into another's requests; and no
        # HTTP_PROXY from the environment applies to it.
        self._client = httpx.AsyncHTTPTransport(retries=0)
        _active.append(self)

    async def close(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
        if self in _active:
            _active.remove(self)

    def upstream(self, scope: Scope) -> tuple[str, bool]:
        """The upstream URL (without query) for a request, and whether it is the backend."""
        path = relative_path(scope)
        if _owns(self._routes.current(), path):
            return self.target.backend + quote(path or "/", safe=_SAFE_CHARS), True
        full = self.target.prefix + (path or "/")
        return self.target.frontend + quote(full, safe=_SAFE_CHARS), False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return
        prefix = prefix_of(scope)
        if prefix != self.target.prefix:
            if scope["type"] == "http":
                await send_plain(
                    send,
                    500,
                    f"reflex-buildd dev serves this app at {self.target.prefix or '/'} only "
                    f"(Vite's base); this request came in at {prefix or '/'}: pass "
                    f"--path {prefix or '/'} to reflex-buildd dev\n".encode(),
                    _NO_STORE,
                )
            return
        if scope["type"] == "http" and not is_safe_path(relative_path(scope)):
            await send_plain(send, 400, b"Bad request path\n", _NO_STORE)
            return
        url, backend = self.upstream(scope)
        if query := scope.get("query_string", b""):
            url += "?" + query.decode("latin-1")
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send, "ws" + url[len("http") :])
        else:
            await self._http(scope, receive, send, url, backend)

    # -- HTTP ----------------------------------------------------------------

    async def _http(
        self, scope: Scope, receive: Receive, send: Send, url: str, backend: bool
    ) -> None:
        import httpx

        if self._client is None:
            await send_plain(send, 503, b"reflex-buildd dev: the mount is not started\n", _NO_STORE)
            return
        try:
            response = await self._client.handle_async_request(_request(scope, receive, url))
        except httpx.TransportError as exc:
            what = "Reflex backend" if backend else "Vite dev server"
            await send_plain(
                send,
                502,
                f"reflex-buildd dev: the {what} is not answering ({type(exc).__name__}); "
                "it may be reloading, or its last reload failed: see the terminal\n".encode(),
                _NO_STORE,
            )
            return
        try:
            await self._relay(response, send, backend)
        except httpx.TransportError:
            return  # the dev server went away mid-response (a reload): a cut stream
        finally:
            await response.aclose()

    async def _relay(self, response: Any, send: Send, backend: bool) -> None:
        """Send the dev server's response on: pages get the ``<meta>`` tag, the rest streams."""
        out = [(k, v) for k, v in response.headers.raw if k.lower() not in _HOP_BY_HOP]
        status = response.status_code
        if not backend and response.headers.get("content-type", "").startswith("text/html"):
            body = b"".join([chunk async for chunk in response.stream])
            if len(body) <= _MAX_HTML:
                body = self._inject(body)
            out = [(k, v) for k, v in out if k.lower() != b"content-length"]
            out.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": out})
            await send({"type": "http.response.body", "body": body})
            return
        await send({"type": "http.response.start", "status": status, "headers": out})
        async for chunk in response.stream:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    def _inject(self, body: bytes) -> bytes:
        # The same tag as a prebuilt page: the frontend finds its backend at
        # the page's origin under the prefix, wherever the host is reached.
        tag = meta_tag(self.target.prefix)
        if self._icon and not has_icon_link(body):
            tag += self._icon
        return inject_meta(body, tag)

    # -- websocket -----------------------------------------------------------

    async def _websocket(self, scope: Scope, receive: Receive, send: Send, url: str) -> None:
        from websockets.exceptions import InvalidHandshake

        message = await receive()
        if message["type"] != "websocket.connect":
            return
        try:
            upstream = await _connect(scope, url)
        except (OSError, TimeoutError, InvalidHandshake):
            # Refused before accept: the browser sees a failed handshake and
            # its client retries (Reflex's socket.io, Vite's HMR client).
            await send({"type": "websocket.close", "code": 1011})
            return
        async with upstream:
            await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
            await _pump(upstream, receive, send)


def _request(scope: Scope, receive: Receive, url: str) -> httpx.Request:
    """The browser's request as the dev server gets it."""
    import httpx

    # The browser's Host goes on (nginx's `proxy_set_header Host $host`):
    # Vite answers 403 to a Host outside server.allowedHosts (Reflex's
    # vite_allowed_hosts), its guard against DNS rebinding. Replaced by the
    # upstream's own address, every Host would pass that check.
    headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP_BY_HOP]
    # Identity: pages are rewritten here, and compression buys nothing on loopback.
    headers = [(k, v) for k, v in headers if k.lower() != b"accept-encoding"]
    headers.append((b"accept-encoding", b"identity"))
    has_body = any(
        k.lower() in (b"content-length", b"transfer-encoding") for k, _ in scope["headers"]
    )
    return httpx.Request(
        scope["method"],
        url,
        headers=headers,
        content=_request_body(receive) if has_body else b"",
        # Connecting is quick on loopback or fails; a response may take
        # as long as the server needs (Vite transforming a large module).
        extensions={"timeout": {"connect": 10.0, "read": None, "write": None, "pool": 10.0}},
    )


async def _connect(scope: Scope, url: str) -> ClientConnection:
    """Open the websocket to the dev server with the browser's own headers and origin."""
    from websockets.asyncio.client import connect

    headers = [
        (k.decode("latin-1"), v.decode("latin-1"))
        for k, v in scope["headers"]
        if k.lower() in _WS_FORWARD
    ]
    origin = next(
        (v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"origin"), None
    )
    return await connect(
        url,
        subprotocols=list(scope.get("subprotocols") or ()) or None,
        origin=origin,  # type: ignore[arg-type]
        additional_headers=headers,
        user_agent_header=None,
        proxy=None,
        compression=None,
        max_size=None,
        ping_interval=None,
        open_timeout=10,
    )


async def _pump(upstream: ClientConnection, receive: Receive, send: Send) -> None:
    """Carry messages both ways until either side closes; the browser learns the code."""
    from websockets.exceptions import ConnectionClosed

    async def downstream() -> None:
        try:
            async for data in upstream:
                key = "text" if isinstance(data, str) else "bytes"
                await send({"type": "websocket.send", key: data})
        except ConnectionClosed:
            pass
        await send({"type": "websocket.close", "code": _close_code(upstream.close_code)})

    async def upstream_pump() -> None:
        while True:
            msg = await receive()
            if msg["type"] == "websocket.receive":
                data = msg.get("bytes")
                await upstream.send(data if data is not None else msg.get("text", ""))
            elif msg["type"] == "websocket.disconnect":
                return

    tasks = {asyncio.create_task(downstream()), asyncio.create_task(upstream_pump())}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed, OSError):
                await task


# The proxies started in this process: `reflex-buildd dev` runs the host in
# its own process and checks that a mount of its project took the dev path.
_active: list[DevProxy] = []


def active_proxies() -> tuple[DevProxy, ...]:
    """The dev proxies started (and not closed) in this process."""
    return tuple(_active)


async def start_dev_proxy(
    target: DevTarget | None, project: str | os.PathLike[str]
) -> DevProxy | None:
    """Start the proxy to ``target`` if it names ``project``, else None (production).

    Raises:
        ProjectNotFoundError: If ``project`` is not a Reflex project.
    """
    if target is None:
        return None  # the production path: not even the project is looked at
    from ..project import find_project

    if target.project.resolve() != find_project(project).root.resolve():
        return None  # dev runs another project; this mount serves its artifact
    proxy = DevProxy(target)
    await proxy.start()
    return proxy


async def _request_body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        if body := message.get("body", b""):
            yield body
        if not message.get("more_body", False):
            return
