"""A real S3 API for tests and benchmarks: moto's standalone server on 127.0.0.1.

Not a mock of the client: obstore talks HTTP to it exactly as to AWS (SigV4,
create-only puts answered with 412). Each server binds a free port, lives in
its own process and is stopped (and reaped) on exit.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["S3Server", "s3_server"]

BUCKET = "buildd"


@dataclass(frozen=True)
class S3Server:
    """A running moto server with one bucket."""

    endpoint: str
    process: subprocess.Popen[bytes]
    bucket: str = BUCKET

    def env(self) -> dict[str, str]:
        """The standard AWS_* variables that point a client at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }

    def url(self, prefix: str) -> str:
        """``s3://bucket/prefix``."""
        return f"s3://{self.bucket}/{prefix}"

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


@contextlib.contextmanager
def s3_server(log: Path | None = None, port: int | None = None) -> Iterator[S3Server]:
    """Start ``moto_server`` on 127.0.0.1, create the bucket, stop it on exit."""
    port = port or _free_port()
    out = log.open("wb") if log is not None else subprocess.DEVNULL
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    server = S3Server(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {process.returncode}")
            try:
                request = urllib.request.Request(f"{server.endpoint}/{BUCKET}", method="PUT")
                with urllib.request.urlopen(request, timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError("moto_server did not start in 30s") from None
                time.sleep(0.1)
        yield server
    finally:
        server.stop()
        if log is not None and hasattr(out, "close"):
            out.close()
