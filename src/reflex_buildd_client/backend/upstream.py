"""Keep-alive HTTP/1.1 connections to the backend child's Unix socket, every wait bounded.

One :class:`Upstream` per child socket. A request takes an idle connection
(the most recently used first, as nginx's upstream ``keepalive`` cache does)
or opens one, writes the request, and reads the answer through :mod:`.h1`; a
connection whose answer was read to its end goes back to the pool, any other
(an error, a timeout, a cancelled request) is aborted, so a half-read answer
can never be taken for the next one.

Why not httpx's transport, which this replaced: its pool walks every
connection on every request and each step crosses anyio; measured on /ping,
it cost the host about 1.2 ms of CPU per forwarded request, this layer about
0.1 ms (``docs/benchmarks.md``).

Idle connections are dropped after :data:`IDLE_SECONDS`, under the keep-alive
timeout of the child's uvicorn (5 s), so a request never races the child
closing the connection it picked. Should it happen anyway, a request without
a body and with an idempotent method is sent again once on a new connection
(RFC 9110 §9.2.2; what Go's and urllib3's clients do); anything else gets a 502.

Waits: see :mod:`.bounds`. A timer per wait aborts the connection when it
fires, which ends the pending read or write at once and marks the connection
as timed out; a timer costs a few microseconds, unlike a task per wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections import deque
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

from ..errors import ReflexBuilddError
from .bounds import Bounds
from .h1 import MAX_HEAD, ResponseHead, UpstreamProtocolError, chunk_size, parse_response_head

__all__ = [
    "BackendTimeoutError",
    "BackendUnreachableError",
    "Reply",
    "Upstream",
    "UpstreamClosedError",
    "connect_unix",
]

T = TypeVar("T")

IDLE_SECONDS = 4.0
# Idle connections kept per child (nginx's `keepalive N`): enough for the
# concurrency of a busy host worker; beyond it connections are closed after use.
MAX_IDLE = 128
# Body reads hand on at most this much at a time.
READ_SIZE = 256 * 1024
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_CRLF = b"\r\n"


class BackendUnreachableError(ReflexBuilddError, ConnectionError):
    """No connection to the backend child's socket (refused, missing, or not within the bound)."""


class BackendTimeoutError(ReflexBuilddError, TimeoutError):
    """The backend child did not answer (or go on answering) within the bound."""


class UpstreamClosedError(ReflexBuilddError, ConnectionError):
    """The backend child closed the connection before its answer was complete."""


async def connect_unix(path: str, bound: float) -> socket.socket:
    """A non-blocking socket connected to ``path`` within ``bound`` seconds.

    A Unix socket whose listen backlog is full (its server has stopped
    accepting) refuses a non-blocking connect with EAGAIN; a blocking one would
    wait. asyncio's ``sock_connect`` takes EAGAIN for a TCP connect in
    progress and hands back a socket that is not connected, so this waits as a
    blocking connect would, trying again with a growing pause until the bound.

    Raises:
        BackendUnreachableError: Refused, missing, or still full at the bound.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound
    pause = 0.002
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    while True:
        try:
            sock.connect(path)
            return sock
        except BlockingIOError:
            if loop.time() >= deadline:
                sock.close()
                raise BackendUnreachableError(
                    f"{path} did not accept a connection within {bound:g}s "
                    "(its backlog is full: the child has stopped accepting)"
                ) from None
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)
        except OSError as exc:
            sock.close()
            reason = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
            raise BackendUnreachableError(f"{path}: {reason}") from None


class _Connection:
    __slots__ = ("expired", "idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0
        self.expired = False

    def expire(self) -> None:
        self.expired = True
        self.writer.transport.abort()

    def usable(self) -> bool:
        return not (self.reader.at_eof() or self.writer.transport.is_closing())

    async def bounded(self, wait: Awaitable[T], seconds: float) -> T:
        """``await wait``, aborting the connection if it takes longer than ``seconds``."""
        timer = asyncio.get_running_loop().call_later(seconds, self.expire)
        try:
            result = await wait
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            if self.expired:
                raise BackendTimeoutError(f"no answer within {seconds:g}s") from None
            if isinstance(exc, asyncio.LimitOverrunError):
                raise UpstreamProtocolError("response head over 64 KiB") from None
            raise UpstreamClosedError(f"the connection closed: {exc!r}") from None
        finally:
            timer.cancel()
        if self.expired:  # a read that ended at the abort's EOF
            raise BackendTimeoutError(f"no answer within {seconds:g}s")
        return result


class Reply:
    """A response being read: its head, then its body through :meth:`chunks`.

    The caller must end it with :meth:`finish` (in a ``finally``), which puts
    a fully read connection back in the pool and aborts any other.
    """

    __slots__ = (
        "_bound",
        "_conn",
        "_done",
        "_finished",
        "_framing",
        "_upstream",
        "at_end",
        "head",
    )

    def __init__(
        self, upstream: Upstream, conn: _Connection, head: ResponseHead, method: str
    ) -> None:
        self.head = head
        self._upstream = upstream
        self._conn = conn
        self._bound = upstream.bounds.response
        self._framing = head.body_framing(method)
        self._done = False  # the body was read to its end, on a kept-alive connection
        self._finished = False
        # Set before the body's last bytes are handed on, when its length says
        # so: the caller can mark them as the last (one send less).
        self.at_end = False

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive (de-chunked), never an empty chunk.

        Raises:
            BackendTimeoutError: If the child stops sending for longer than the bound.
            UpstreamClosedError: If the connection closes before the body ends.
            UpstreamProtocolError: If the chunked framing is broken.
        """
        length, chunked = self._framing
        if length == 0:
            pass
        elif length is not None:
            async for data in self._exactly(length, last=True):
                yield data
        elif chunked:
            while size := await self._chunk_size():
                async for data in self._exactly(size):
                    yield data
                if await self._read(self._conn.reader.readexactly(2)) != _CRLF:
                    raise UpstreamProtocolError("a chunk does not end with CRLF")
            while await self._read(self._conn.reader.readuntil(_CRLF)) != _CRLF:
                pass  # trailer fields: not forwarded (ASGI has no place for them here)
        else:  # until the child closes the connection
            while data := await self._read(self._conn.reader.read(READ_SIZE)):
                yield data
            return  # never reusable
        self._done = self.head.keep_alive

    async def body(self) -> bytes:
        """The whole body (for the host's own small requests)."""
        return b"".join([data async for data in self.chunks()])

    @property
    def streams(self) -> bool:
        """Whether the body may take long: chunked, until close, or over one read."""
        length, _ = self._framing
        return length is None or length > READ_SIZE

    def abort(self) -> None:
        """Give up on the answer (its reader is gone): a pending read ends at once."""
        self._conn.writer.transport.abort()

    def finish(self) -> None:
        """Release the connection: back to the pool if the answer was read whole."""
        if self._finished:
            return
        self._finished = True
        if self._done and self._conn.usable():
            self._upstream.release(self._conn)
        else:
            # Aborted, not closed: nothing is owed to the child on the way out.
            self._conn.writer.transport.abort()

    async def _exactly(self, length: int, last: bool = False) -> AsyncIterator[bytes]:
        reader = self._conn.reader
        while length:
            data = await self._read(reader.read(min(length, READ_SIZE)))
            if not data:
                raise UpstreamClosedError("the connection closed inside a body")
            length -= len(data)
            self.at_end = last and not length
            yield data

    async def _chunk_size(self) -> int:
        line = await self._read(self._conn.reader.readuntil(_CRLF))
        return chunk_size(line[:-2])

    def _read(self, wait: Awaitable[T]) -> Awaitable[T]:
        return self._conn.bounded(wait, self._bound)


class Upstream:
    """The pooled connections to one backend child's socket."""

    def __init__(self, socket_path: str, bounds: Bounds) -> None:
        self.socket_path = socket_path
        self.bounds = bounds
        self._idle: deque[_Connection] = deque()
        self._sweep: asyncio.TimerHandle | None = None
        # Kept connections belong to the loop that made them (a test client may
        # run each request in a loop of its own).
        self._loop: asyncio.AbstractEventLoop | None = None

    async def exchange(
        self,
        method: str,
        head: bytes,
        body: bytes = b"",
        rest: AsyncIterator[bytes] | None = None,
    ) -> Reply:
        """Send one request and read its answer's head.

        ``head`` is the request head (:func:`.h1.request_head`), ``body`` the
        bytes that follow it, and ``rest`` the rest of the body, already framed
        for the wire (chunk sizes included), if it streams in.

        Raises:
            BackendUnreachableError: No connection within the connect bound.
            BackendTimeoutError: No answer within the response bound.
            UpstreamClosedError: The connection closed before the answer's head.
            UpstreamProtocolError: The answer is not HTTP/1.1 as :mod:`.h1` reads it.
            Exception: Whatever ``rest`` raises (the connection is then aborted).
        """
        retry = rest is None and not body and method in _IDEMPOTENT
        conn, reused = await self._connect()
        try:
            return await self._send(conn, method, head, body, rest)
        except UpstreamClosedError:
            if not (retry and reused):
                raise
        # A kept-alive connection the child closed as it was picked: once more, anew.
        conn, _ = await self._connect(fresh=True)
        return await self._send(conn, method, head, body, rest)

    async def request(self, method: str, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
        """A small request of the host's own: its status and whole body, all waits bounded."""
        reply = await self.exchange(method, head, body)
        try:
            return reply.head.status, await reply.body()
        finally:
            reply.finish()

    def release(self, conn: _Connection) -> None:
        """Keep a connection whose answer was read whole, for the next request."""
        if len(self._idle) >= MAX_IDLE:
            conn.writer.transport.abort()
            return
        loop = asyncio.get_running_loop()
        conn.idle_since = loop.time()
        self._idle.append(conn)
        if self._sweep is None:
            self._sweep = loop.call_later(IDLE_SECONDS, self._drop_stale)

    async def aclose(self) -> None:
        """Close every idle connection."""
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        while self._idle:
            self._idle.pop().writer.transport.abort()

    async def _connect(self, fresh: bool = False) -> tuple[_Connection, bool]:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            for conn in self._idle:
                # Its loop may be closed already: then the socket closes when collected.
                with contextlib.suppress(RuntimeError):
                    conn.writer.transport.abort()
            self._idle.clear()
            self._sweep = None
            self._loop = loop
        while self._idle and not fresh:
            conn = self._idle.pop()
            if conn.usable():
                return conn, True
            conn.writer.transport.abort()
        sock = await connect_unix(self.socket_path, self.bounds.connect)
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        return _Connection(reader, writer), False

    async def _send(
        self,
        conn: _Connection,
        method: str,
        head: bytes,
        body: bytes,
        rest: AsyncIterator[bytes] | None,
    ) -> Reply:
        bound = self.bounds.response
        try:
            writer = conn.writer
            if len(body) < 16384:
                writer.write(head + body)  # one write, one syscall: small requests
            else:
                writer.write(head)
                writer.write(body)
            if rest is not None:
                async for data in rest:
                    writer.write(data)
                    await conn.bounded(writer.drain(), bound)
            while True:
                data = await conn.bounded(conn.reader.readuntil(b"\r\n\r\n"), bound)
                if len(data) > MAX_HEAD:
                    raise UpstreamProtocolError("response head over 64 KiB")
                parsed = parse_response_head(data)
                if parsed.status >= 200:
                    return Reply(self, conn, parsed, method)
                if parsed.status == 101:
                    raise UpstreamProtocolError("101 Switching Protocols to a plain request")
                # 100 Continue and other interim answers: the final one follows.
        except BaseException:
            conn.writer.transport.abort()
            raise

    def _drop_stale(self) -> None:
        loop = asyncio.get_running_loop()
        limit = loop.time() - IDLE_SECONDS
        while self._idle and self._idle[0].idle_since <= limit:
            self._idle.popleft().writer.transport.abort()
        self._sweep = None
        if self._idle:
            wait = self._idle[0].idle_since + IDLE_SECONDS - loop.time()
            self._sweep = loop.call_later(max(wait, 0.1), self._drop_stale)
