"""A real Redis for tests and benchmarks: Debian's ``redis-server`` on 127.0.0.1.

Each server binds a free TCP port on loopback, keeps nothing on disk (``--save ""``,
no append-only file), lives in its own process and is stopped (and reaped) on exit.
``setup.sh`` installs it (Debian's ``redis-tools`` carries the binary; the server is that
binary under the name ``redis-server``) without starting any service.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RedisServer", "redis_binary", "redis_server"]

REPO = Path(__file__).resolve().parent.parent


def redis_binary() -> str:
    """The ``redis-server`` to run: on PATH, or the link ``setup.sh`` made in ``.tools``."""
    found = shutil.which("redis-server")
    if found:
        return found
    local = REPO / ".tools" / "bin" / "redis-server"
    if local.exists():
        return str(local)
    raise RuntimeError("redis-server is missing: run ./scripts/setup.sh (Debian's redis-tools)")


@dataclass(frozen=True)
class RedisServer:
    """A running Redis server."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT`` (what ``REFLEX_REDIS_URL`` takes)."""
        return f"redis://127.0.0.1:{self.port}"

    def flush(self) -> None:
        """Forget every key (``FLUSHALL``), so tests do not see each other's state."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(b"*1\r\n$8\r\nFLUSHALL\r\n")
            sock.recv(64)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL); idempotent."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def redis_server(log: Path | None = None) -> Iterator[RedisServer]:
    """Start ``redis-server`` on 127.0.0.1 and a free port; stop it on exit."""
    port = _free_port()
    out = log.open("wb") if log is not None else subprocess.DEVNULL
    process = subprocess.Popen(
        [
            redis_binary(),
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--save", "",
            "--appendonly", "no",
            "--dir", os.environ.get("TMPDIR", "/tmp"),
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    server = RedisServer(port, process)
    try:
        deadline = time.monotonic() + 20
        while not _answers(port):
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not answer PING within 20 s")
            time.sleep(0.05)
        yield server
    finally:
        server.stop()
        if log is not None:
            out.close()  # type: ignore[union-attr]
