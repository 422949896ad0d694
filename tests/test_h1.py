"""The forwarder's HTTP/1.1 layer: pure parsing, then real Unix-socket servers.

The servers here are asyncio servers on real sockets in ``tmp_path`` that
answer as scripted (well, badly, late, or not at all), so each bound and each
framing rule of :mod:`reflex_buildd_client.backend.upstream` is seen at work
without a Reflex child; ``tests/test_forward.py`` does the same against the
real child.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import run_in_own_loop
from reflex_buildd_client.backend import upstream as upstream_module
from reflex_buildd_client.backend.bounds import Bounds
from reflex_buildd_client.backend.forward import UnixForwarder
from reflex_buildd_client.backend.h1 import (
    UpstreamProtocolError,
    chunk_size,
    end_to_end,
    parse_response_head,
    request_head,
)
from reflex_buildd_client.backend.upstream import (
    BackendTimeoutError,
    BackendUnreachableError,
    Upstream,
    UpstreamClosedError,
)
from reflex_buildd_client.backend.wsforward import onward_code

# -- pure ----------------------------------------------------------------------


def test_response_head_framing() -> None:
    head = parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\n")
    assert (head.status, head.length, head.chunked, head.keep_alive) == (200, 5, False, True)
    assert head.headers == [(b"content-length", b"5"), (b"x-a", b"b")]
    head = parse_response_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    assert (head.length, head.chunked) == (None, True)
    head = parse_response_head(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n")
    assert (head.length, head.chunked, head.keep_alive) == (None, False, False)
    assert head.body_framing("GET") == (None, False)  # until the connection closes
    assert head.body_framing("HEAD") == (0, False)
    assert parse_response_head(b"HTTP/1.1 304 Not Modified\r\n\r\n").body_framing("GET") == (
        0,
        False,
    )
    assert not parse_response_head(b"HTTP/1.0 200 OK\r\n\r\n").keep_alive
    assert parse_response_head(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n").keep_alive


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: -3\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nx-a : b\r\n\r\n",
        b"HTTP/2 200\r\n\r\n",
        b"HTTP/1.1 2xx OK\r\n\r\n",
        b"SSH-2.0-OpenSSH\r\n\r\n",
    ],
)
def test_response_head_refused(head: bytes) -> None:
    with pytest.raises(UpstreamProtocolError):
        parse_response_head(head)


def test_end_to_end_drops_hop_by_hop_and_connection_named() -> None:
    headers = [
        (b"connection", b"keep-alive, X-Secret"),
        (b"x-secret", b"1"),
        (b"keep-alive", b"timeout=5"),
        (b"te", b"trailers"),
        (b"transfer-encoding", b"chunked"),
        (b"upgrade", b"h2c"),
        (b"date", b"today"),
        (b"x-kept", b"2"),
    ]
    assert end_to_end(headers, frozenset({b"date"})) == [(b"x-kept", b"2")]


@pytest.mark.parametrize(
    "headers",
    [[(b"x-a", b"1\r\nx-b: 2")], [(b"x-a", b"1\nx")], [(b"x-a", b"1\rx")], [(b"x-a", b"\0")]],
)
def test_request_head_cannot_be_split(headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(UpstreamProtocolError):
        request_head("GET", b"/", headers)
    assert request_head("GET", b"/p?q", [(b"x-a", b"1")]) == b"GET /p?q HTTP/1.1\r\nx-a: 1\r\n\r\n"


def test_chunk_size() -> None:
    assert chunk_size(b"1f") == 31
    assert chunk_size(b"A;ext=1") == 10
    for bad in (b"", b"x", b"-1", b"1" * 17):
        with pytest.raises(UpstreamProtocolError):
            chunk_size(bad)


def test_close_codes_sent_on() -> None:
    assert onward_code(1005, dropped=1001) == 1000  # a close frame without a code
    assert onward_code(None, dropped=1001) == 1000
    assert onward_code(1006, dropped=1001) == 1001  # no close frame: going away
    assert onward_code(1006, dropped=1011) == 1011  # the child died
    assert onward_code(1015, dropped=1001) == 1000  # reserved: never sent
    assert onward_code(4001, dropped=1001) == 4001
    assert onward_code(1008, dropped=1001) == 1008


# -- real sockets --------------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
GET = request_head("GET", b"/", [(b"host", b"x")])


def _arun(coro: Awaitable[Any]) -> Any:
    return run_in_own_loop(coro, timeout=120)


def _run(tmp_path: Path, handler: Handler, scenario: Callable[[str], Awaitable[Any]]) -> Any:
    """Serve ``handler`` on a Unix socket in ``tmp_path`` while ``scenario(path)`` runs."""
    path = str(tmp_path / "s.sock")

    async def main() -> Any:
        server = await asyncio.start_unix_server(handler, path)
        async with server:
            return await asyncio.wait_for(scenario(path), 30)

    return _arun(main())


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def test_connections_are_kept_and_reused(tmp_path: Path) -> None:
    connections = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        while True:
            try:
                await _read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(OK)

    async def scenario(path: str) -> list[int]:
        up = Upstream(path, Bounds(connect=1, response=1))
        answers = [(await up.request("GET", GET))[0] for _ in range(20)]
        await up.aclose()
        return answers

    assert _run(tmp_path, handler, scenario) == [200] * 20
    assert len(connections) == 1


def test_bodies_by_length_chunked_and_close(tmp_path: Path) -> None:
    answers = [
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        b"3;x=y\r\nhel\r\n2\r\nlo\r\n0\r\nx-trailer: 1\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nhello",
    ]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answer in answers:
            await _read_request(reader)
            writer.write(answer)
        writer.close()

    async def scenario(path: str) -> list[tuple[int, bytes]]:
        up = Upstream(path, Bounds(connect=1, response=1))
        got = [await up.request("GET", GET) for _ in answers]
        await up.aclose()
        return got

    assert _run(tmp_path, handler, scenario) == [(200, b"hello")] * 4


def test_a_kept_connection_closed_by_the_child_is_retried_once(tmp_path: Path) -> None:
    """The race with the child's keep-alive timeout: a GET goes again, a POST does not."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(OK)
        await _read_request(reader)  # the next request on this connection: dropped
        writer.transport.abort()

    async def scenario(path: str) -> tuple[int, type[Exception] | None]:
        up = Upstream(path, Bounds(connect=1, response=1))
        await up.request("GET", GET)
        status, _ = await up.request("GET", GET)
        post = request_head("POST", b"/", [(b"content-length", b"1")])
        error: type[Exception] | None = None
        await up.request("GET", GET)  # leaves a kept connection that will be dropped
        try:
            await up.request("POST", post, b"x")
        except UpstreamClosedError as exc:
            error = type(exc)
        await up.aclose()
        return status, error

    assert _run(tmp_path, handler, scenario) == (200, UpstreamClosedError)


def test_no_answer_is_a_timeout_and_the_connection_is_dropped(tmp_path: Path) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await asyncio.sleep(60)

    async def scenario(path: str) -> float:
        up = Upstream(path, Bounds(connect=1, response=0.3))
        started = time.monotonic()
        with pytest.raises(BackendTimeoutError):
            await up.request("GET", GET)
        return time.monotonic() - started

    assert _run(tmp_path, handler, scenario) < 2


def test_a_body_that_stops_is_a_timeout(tmp_path: Path) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf")
        await asyncio.sleep(60)

    async def scenario(path: str) -> None:
        up = Upstream(path, Bounds(connect=1, response=0.3))
        with pytest.raises(BackendTimeoutError):
            await up.request("GET", GET)

    _run(tmp_path, handler, scenario)


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf",  # then closes
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel",
        b"",  # closes without a word
    ],
)
def test_a_cut_answer_is_an_error(tmp_path: Path, answer: bytes) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(answer)
        writer.close()

    async def scenario(path: str) -> None:
        up = Upstream(path, Bounds(connect=1, response=1))
        with pytest.raises(UpstreamClosedError):
            await up.request("GET", GET)

    _run(tmp_path, handler, scenario)


def test_a_huge_or_garbled_head_is_a_protocol_error(tmp_path: Path) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nx-big: " + b"a" * 100_000 + b"\r\n\r\n")

    async def scenario(path: str) -> None:
        up = Upstream(path, Bounds(connect=1, response=1))
        with pytest.raises(UpstreamProtocolError):
            await up.request("GET", GET)

    _run(tmp_path, handler, scenario)


def test_unreachable_socket(tmp_path: Path) -> None:
    async def missing() -> None:
        up = Upstream(str(tmp_path / "missing.sock"), Bounds(connect=1, response=1))
        with pytest.raises(BackendUnreachableError, match="ENOENT"):
            await up.request("GET", GET)

    _arun(missing())
    # Bound but not listening: refused.
    path = str(tmp_path / "bound.sock")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(path)

        async def refused() -> None:
            up = Upstream(path, Bounds(connect=1, response=1))
            with pytest.raises(BackendUnreachableError, match="ECONNREFUSED"):
                await up.request("GET", GET)

        _arun(refused())


def test_full_backlog_waits_the_connect_bound(tmp_path: Path) -> None:
    """A server that stopped accepting: its backlog fills, connect waits its bound.

    (asyncio's own sock_connect would hand back an unconnected socket here.)
    """
    path = str(tmp_path / "full.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(0)
    held = []
    try:
        for _ in range(3):
            sock = socket.socket(socket.AF_UNIX)
            sock.setblocking(False)
            try:
                sock.connect(path)
            except BlockingIOError:
                sock.close()
                break
            held.append(sock)

        async def scenario() -> float:
            up = Upstream(path, Bounds(connect=0.5, response=5))
            started = time.monotonic()
            with pytest.raises(BackendUnreachableError, match="backlog is full"):
                await up.request("GET", GET)
            return time.monotonic() - started

        assert 0.4 < _arun(scenario()) < 3
    finally:
        for sock in held:
            sock.close()
        server.close()


def test_idle_connections_are_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Idle connections go before the child's keep-alive timeout: no fd stays behind."""
    monkeypatch.setattr(upstream_module, "IDLE_SECONDS", 0.3)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await _read_request(reader)
            except asyncio.IncompleteReadError:
                writer.close()  # the server's end too, so that only ours are counted
                return
            writer.write(OK)

    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    async def scenario(path: str) -> tuple[int, int, int]:
        up = Upstream(path, Bounds(connect=1, response=1))
        before = fds()
        await asyncio.gather(*(up.request("GET", GET) for _ in range(10)))
        busy = fds()
        await asyncio.sleep(1)
        return before, busy, fds()

    before, busy, after = _run(tmp_path, handler, scenario)
    assert busy >= before + 10  # both ends of ten connections (the server is here too)
    assert after <= before


# -- the forwarder as an ASGI app ------------------------------------------------


def _asgi_get(forwarder: UnixForwarder) -> Awaitable[list[dict[str, Any]]]:
    async def call() -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
        await forwarder(scope, receive, send)
        return sent

    return call()


def test_forwarder_statuses_logged_once_per_incident(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stuck = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await _read_request(reader)
            except asyncio.IncompleteReadError:
                return
            if stuck.is_set():
                await asyncio.sleep(60)
            writer.write(
                b"HTTP/1.1 200 OK\r\ndate: x\r\nserver: uvicorn\r\ncontent-length: 2\r\n\r\nok"
            )

    async def scenario(path: str) -> list[int]:
        forwarder = UnixForwarder(path, Bounds(connect=1, response=0.2))
        statuses = []
        first = await _asgi_get(forwarder)
        assert first[0]["headers"] == [(b"content-length", b"2")]  # no date, no server
        assert first[1] == {"type": "http.response.body", "body": b"ok", "more_body": False}
        stuck.set()
        for _ in range(2):
            results = await asyncio.gather(*(_asgi_get(forwarder) for _ in range(5)))
            statuses += [sent[0]["status"] for sent in results]
        assert forwarder.failing_since is not None  # for the supervisor: stuck since then
        stuck.clear()
        statuses.append((await _asgi_get(forwarder))[0]["status"])
        assert forwarder.failing_since is None
        await forwarder.aclose()
        missing = UnixForwarder(str(tmp_path / "gone.sock"))
        statuses.append((await _asgi_get(missing))[0]["status"])
        return statuses

    with caplog.at_level(logging.WARNING, logger="reflex_buildd"):
        statuses = _run(tmp_path, handler, scenario)
    assert statuses == [504] * 10 + [200, 503]
    messages = [r.getMessage() for r in caplog.records]
    assert sum("did not answer within 0.2s" in m for m in messages) == 1, messages
    assert sum("answers again" in m and "10 got 504" in m for m in messages) == 1, messages
    assert sum("is unreachable" in m and "ENOENT" in m for m in messages) == 1, messages


def test_a_new_event_loop_gets_new_connections(tmp_path: Path) -> None:
    """Kept connections belong to their loop: a test client running each request in a
    loop of its own must not be handed another loop's connection."""
    path = str(tmp_path / "loops.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(8)
    up = Upstream(path, Bounds(connect=1, response=2))

    def answer_one() -> None:
        conn, _ = server.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            conn.sendall(OK)
            time.sleep(0.2)  # keep it open: the client side keeps it alive

    import threading

    try:
        for _ in range(2):
            thread = threading.Thread(target=answer_one)
            thread.start()
            assert _arun(up.request("GET", GET)) == (200, b"ok")
            thread.join(5)
    finally:
        server.close()
