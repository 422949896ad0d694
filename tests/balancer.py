"""A small round-robin load balancer for tests: several hosts behind one address.

What a layer-4 balancer in front of a fleet does (nginx ``stream`` with an
``upstream`` of several servers, an AWS NLB, HAProxy in ``mode tcp``), in one
asyncio process: each new TCP connection goes to the next upstream in turn,
skipping one that refuses connections, and bytes are relayed both ways
untouched, so HTTP and websockets pass alike. Nothing is sticky: the session
a browser holds lives wherever its next connection lands.

For a test to move sessions between hosts, ``SIGUSR1`` closes every open
connection (a rolling restart or a rebalance, seen from the browser): clients
reconnect, and their new connections take the next turn. Each connection is
logged as one JSON line (its upstream and the first line it sent), so a test
can tell which host served the event websocket. It listens on 127.0.0.1 only
and exits by itself after ``--max-seconds``.

Run: ``python tests/balancer.py --port 8080 --upstream 127.0.0.1:8001 --upstream 127.0.0.1:8002 --log conns.jsonl``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Balancer", "run_balancer"]


class _RoundRobin:
    def __init__(self, upstreams: list[tuple[str, int]], log: Path) -> None:
        self.upstreams = upstreams
        self.turn = itertools.cycle(range(len(upstreams)))
        self.open: set[asyncio.StreamWriter] = set()
        self.log = log.open("a", buffering=1)
        self.count = 0

    async def _connect(self) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter]:
        """The next upstream that accepts a connection (each is tried once)."""
        error: OSError | None = None
        for _ in self.upstreams:
            index = next(self.turn)
            try:
                reader, writer = await asyncio.open_connection(*self.upstreams[index])
                return index, reader, writer
            except OSError as exc:
                error = exc
        raise error or OSError("no upstream")

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.count += 1
        number = self.count
        try:
            index, up_r, up_w = await self._connect()
        except OSError:
            client_w.close()
            return
        self.open.update((client_w, up_w))
        # The first line the client sends names the request (or the websocket).
        first = await _first_line(client_r)
        up_w.write(first)
        line = first.split(b"\r\n", 1)[0].decode("latin-1", "replace")
        entry = {"n": number, "upstream": index, "first": line, "time": time.time()}
        self.log.write(json.dumps(entry) + "\n")
        try:
            await asyncio.gather(_pipe(client_r, up_w), _pipe(up_r, client_w))
        finally:
            for writer in (client_w, up_w):
                self.open.discard(writer)
                writer.close()

    def drop_all(self) -> None:
        """Close every open connection, both sides: clients must reconnect."""
        self.log.write(json.dumps({"dropped": len(self.open) // 2, "time": time.time()}) + "\n")
        for writer in list(self.open):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self.open.clear()


async def _first_line(reader: asyncio.StreamReader) -> bytes:
    try:
        return await asyncio.wait_for(reader.readuntil(b"\r\n"), timeout=30)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
        return b""


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    with contextlib.suppress(Exception):
        writer.close()


async def _serve(port: int, balancer: _RoundRobin, max_seconds: float) -> None:
    server = await asyncio.start_server(balancer.handle, "127.0.0.1", port)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, balancer.drop_all)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.call_later(max_seconds, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", action="append", required=True, help="HOST:PORT")
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args()
    upstreams = [(u.rsplit(":", 1)[0], int(u.rsplit(":", 1)[1])) for u in args.upstream]
    asyncio.run(_serve(args.port, _RoundRobin(upstreams, args.log), args.max_seconds))


@dataclass
class Balancer:
    """A running balancer process."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def connections(self) -> list[dict[str, Any]]:
        """Every connection so far (and every drop), in order."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def drop_all(self) -> None:
        """Close every open connection (``SIGUSR1``)."""
        self.process.send_signal(signal.SIGUSR1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def run_balancer(upstreams: list[str], log: Path, max_seconds: float = 600) -> Iterator[Balancer]:
    """Start a balancer over ``upstreams`` (``http://127.0.0.1:PORT`` each); stop it on exit."""
    port = _free_port()
    args = [sys.executable, __file__, "--port", str(port), "--log", str(log)]
    args += ["--max-seconds", str(max_seconds)]
    for url in upstreams:
        args += ["--upstream", url.removeprefix("http://")]
    process = subprocess.Popen(args)
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"balancer exited with {process.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                raise TimeoutError("balancer not listening in 20 s")
            time.sleep(0.05)
        yield Balancer(f"http://127.0.0.1:{port}", process, log)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()
