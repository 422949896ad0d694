"""A small reverse proxy for tests: strips an external prefix, says so in headers.

What nginx's ``location /ext/tools/ { proxy_pass http://host/; ... }`` with
``X-Forwarded-Prefix``, ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` does,
in one asyncio process: HTTP (bodies streamed both ways, raw bytes, so
compressed responses pass untouched) and websockets (frames relayed both
ways). It listens on 127.0.0.1 only and exits by itself after
``--max-seconds``.

Run: ``python tests/proxy.py --port 8081 --upstream http://127.0.0.1:8000 --prefix /ext/tools``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_HOP_BY_HOP = {
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"transfer-encoding",
    b"te",
    b"trailer",
    b"upgrade",
    b"host",
    b"content-length",
}


class Proxy:
    """The proxy's ASGI app."""

    def __init__(
        self, upstream: str, prefix: str, proto: str = "http", forward: bool = True
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.prefix = prefix.rstrip("/").encode()
        self.proto = proto
        self.forward = forward
        self.client: Any = None

    def _target(self, scope: dict[str, Any]) -> bytes | None:
        raw = scope.get("raw_path") or scope["path"].encode()
        if raw != self.prefix and not raw.startswith(self.prefix + b"/"):
            return None
        rest = raw[len(self.prefix) :] or b"/"
        if scope.get("query_string"):
            rest += b"?" + scope["query_string"]
        return rest

    def _headers(self, scope: dict[str, Any]) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = []
        host = ""
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
            if (
                name in _HOP_BY_HOP
                or name.startswith(b"x-forwarded-")
                or name.startswith(b"sec-websocket-")
            ):
                continue
            headers.append((name.decode("latin-1"), value.decode("latin-1")))
        if self.forward:
            headers += [
                ("x-forwarded-prefix", self.prefix.decode()),
                ("x-forwarded-proto", self.proto),
                ("x-forwarded-host", host),
                ("x-forwarded-for", scope["client"][0]),
            ]
        return headers

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        import httpx

        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.client = httpx.AsyncClient(timeout=30, follow_redirects=False)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        target = self._target(scope)
        if target is None:
            body = b"not under the proxy's prefix\n"
            await send(
                {
                    "type": "http.response.start",
                    "status": 404,
                    "headers": [(b"content-length", str(len(body)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = self._headers(scope)
        if not any(name == "accept-encoding" for name, _ in headers):
            headers.append(("accept-encoding", "identity"))  # else httpx asks for gzip
        request = self.client.build_request(
            scope["method"],
            self.upstream + target.decode("latin-1"),
            headers=headers,
            content=b"".join(chunks),
        )
        response = await self.client.send(request, stream=True)
        try:
            out = [
                (k, v)
                for k, v in response.headers.raw
                if k.lower() not in _HOP_BY_HOP - {b"content-length"}
            ]
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": out}
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    async def _websocket(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        from websockets.asyncio.client import connect

        target = self._target(scope)
        if target is None:
            await send({"type": "websocket.close", "code": 1008})
            return
        url = "ws" + self.upstream[len("http") :] + target.decode("latin-1")
        headers = [(k, v) for k, v in self._headers(scope) if k not in ("origin", "cookie")]
        origin = next((v.decode() for k, v in scope["headers"] if k == b"origin"), None)
        cookie = next((v.decode() for k, v in scope["headers"] if k == b"cookie"), None)
        if cookie:
            headers.append(("cookie", cookie))
        message = await receive()  # websocket.connect
        assert message["type"] == "websocket.connect"
        try:
            upstream = await connect(
                url,
                additional_headers=headers,
                origin=origin,  # type: ignore[arg-type]
                subprotocols=scope.get("subprotocols") or None,
                open_timeout=10,
                max_size=None,
                compression=None,
            )
        except Exception:
            await send({"type": "websocket.close", "code": 1011})
            return
        await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})

        async def downstream_to_upstream() -> None:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    return
                data = (
                    message.get("bytes")
                    if message.get("bytes") is not None
                    else message.get("text")
                )
                await upstream.send(data)

        async def upstream_to_downstream() -> None:
            async for data in upstream:
                key = "bytes" if isinstance(data, bytes) else "text"
                await send({"type": "websocket.send", key: data})

        tasks = {
            asyncio.create_task(downstream_to_upstream()),
            asyncio.create_task(upstream_to_downstream()),
        }
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await upstream.close()
            with contextlib.suppress(Exception):
                await send({"type": "websocket.close", "code": 1000})


async def _serve(port: int, app: Proxy, max_seconds: float) -> None:
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    # Stop by itself, even if the test that started it is gone.
    asyncio.get_running_loop().call_later(max_seconds, setattr, server, "should_exit", True)
    await server.serve()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--proto", default="http")
    parser.add_argument("--no-forwarded", action="store_true", help="strip without telling")
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args(argv)
    app = Proxy(args.upstream, args.prefix, args.proto, forward=not args.no_forwarded)
    asyncio.run(_serve(args.port, app, args.max_seconds))


@dataclass
class RunningProxy:
    """A proxy process: its public URL and the prefix it strips."""

    url: str
    prefix: str
    process: subprocess.Popen[bytes]
    log: Path


@contextlib.contextmanager
def run_proxy(
    upstream: str, prefix: str, *, log_dir: Path, proto: str = "http", timeout: float = 30
) -> Iterator[RunningProxy]:
    """Start the proxy on a free 127.0.0.1 port in front of ``upstream``; stop it on exit."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = log_dir / f"proxy-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--port",
                str(port),
                "--upstream",
                upstream,
                "--prefix",
                prefix,
                "--proto",
                proto,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = RunningProxy(f"http://127.0.0.1:{port}", prefix, process, log)
    from conftest import stop_process, wait_listening  # the test-side helpers

    try:
        try:
            wait_listening(port, process, timeout=timeout, what="proxy")
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}: {log.read_text(errors='replace')}") from None
        yield running
    finally:
        stop_process(process)


if __name__ == "__main__":
    main()
