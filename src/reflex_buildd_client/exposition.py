"""Serve the metrics in Prometheus' text format: ``metrics_app()`` for hosts, a port for the daemon.

A host mounts :func:`metrics_app` wherever it wants (``app.mount("/metrics",
metrics_app())``; never under a Reflex prefix by default, so a public app does
not publish its counters). Creating it starts counting in the process
(:mod:`.metrics`) and puts prometheus_client in multi-process mode, so that
each worker of a server writes its counters to a file of one directory and a
scrape of any worker sums them all:

- ``PROMETHEUS_MULTIPROC_DIR`` (or ``REFLEX_BUILDD_METRICS_DIR``) when set:
  the directory the operator wipes between runs, as prometheus_client asks;
- else a private directory of ours, ``<runtime dir>/reflex-buildd-<uid>/metrics/<server>``
  (``$XDG_RUNTIME_DIR``, else the temp directory; mode 0700, refused if
  another user owns it or others may read it). ``<server>`` is the
  supervising process of a multi-worker server (uvicorn ``--workers``,
  gunicorn, granian: the parent, when it runs the same Python) with its
  start time, else this process: each run of a server starts from zero, and
  the directories of servers that are gone are removed.

:func:`serve_daemon_metrics` serves the daemon's own (single-process) counters
on ``HOST:PORT`` (``reflex-buildd watch --metrics``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import metrics
from .backend.rundir import RuntimeDir
from .errors import InvalidConfigError, ReflexBuilddError
from .types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from .settings import Settings

__all__ = ["metrics_app", "multiprocess_dir", "serve_daemon_metrics"]

_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _start_ticks(pid: int) -> str:
    """The start time of ``pid`` in clock ticks since boot ("" where /proc has none)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


def _server_pid() -> int:
    """The parent when it runs the same Python (a worker's supervisor), else this process."""
    parent = os.getppid()
    try:
        same = os.readlink(f"/proc/{parent}/exe") == os.readlink("/proc/self/exe")
    except OSError:
        same = False
    return parent if same and parent > 1 else os.getpid()


def _private(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if path.is_symlink() or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ReflexBuilddError(
            f"{path} is not a directory private to this user; refusing to keep metrics there "
            "(set REFLEX_BUILDD_METRICS_DIR)"
        )
    return path


def _sweep(root: Path, keep: str) -> None:
    """Remove the directories of servers that are gone (their counters died with them)."""
    for entry in root.iterdir():
        pid, _, ticks = entry.name.partition("-")
        if entry.name == keep or not pid.isdigit():
            continue
        if _start_ticks(int(pid)) != ticks:
            shutil.rmtree(entry, ignore_errors=True)


def multiprocess_dir(settings: Settings) -> Path:
    """The directory this server's workers share their counters in (made if missing).

    Raises:
        ReflexBuilddError: Our default directory is not private to this user.
    """
    if settings.metrics_dir:
        path = Path(settings.metrics_dir)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path
    # The private runtime directory of process mode, created and checked without
    # following links: a name planted in a shared temp directory by another user (a
    # link, a directory of theirs) is refused. Once ours, nobody else can replace it
    # (temp directories are sticky), so the paths below it stay ours.
    RuntimeDir(Path(settings.runtime_dir)).close()
    root = _private(Path(settings.runtime_dir) / f"reflex-buildd-{os.getuid()}" / "metrics")
    server = _server_pid()
    name = f"{server}-{_start_ticks(server)}"
    _sweep(root, name)
    return _private(root / name)


def _multiprocess(directory: Path) -> None:
    """Make prometheus_client count into files of ``directory`` (for this process)."""
    # prometheus_client reads the variable itself (when it writes and when it
    # collects): set it before importing it, and switch an earlier import over.
    os.environ[_ENV] = str(directory)
    try:
        from prometheus_client import values
    except ImportError:
        raise InvalidConfigError(
            "metrics need prometheus_client: pip install prometheus_client"
        ) from None
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.MultiProcessValue()


class _WorkerFiles:
    """prometheus_client's multi-process collection, minus files still being created.

    A worker that starts counting creates its file empty and then sizes it; a
    scrape answered by another worker in between would fail on the empty file
    (``MultiProcessCollector`` reads every ``*.db``). Such a file holds no count yet.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def collect(self) -> Any:
        from prometheus_client.multiprocess import MultiProcessCollector

        files = []
        for path in sorted(self.directory.glob("*.db")):
            try:
                if path.stat().st_size >= 8:  # the header: the bytes in use
                    files.append(str(path))
            except OSError:
                continue
        return MultiProcessCollector.merge(files, accumulate=True)


class _MetricsApp:
    """A plain ASGI app answering GET/HEAD with every worker's counters."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def render(self) -> bytes:
        """The text exposition of the counters of every worker of this server."""
        from prometheus_client import CollectorRegistry, generate_latest

        metrics.flush()  # this worker's latest served responses, exactly
        registry = CollectorRegistry()
        registry.register(_WorkerFiles(self.directory))
        return bytes(generate_latest(registry))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # mounted on its own, it has nothing to start
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        from prometheus_client import CONTENT_TYPE_LATEST

        if scope["method"] not in ("GET", "HEAD"):
            status, body, kind = 405, b"", b"text/plain"
        else:
            status, body, kind = 200, self.render(), CONTENT_TYPE_LATEST.encode("ascii")
        headers = [
            (b"content-type", kind),
            (b"content-length", str(len(body)).encode("ascii")),
            (b"cache-control", b"no-store"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )


def metrics_app(settings: Settings | None = None) -> ASGIApp:
    """An ASGI app serving this host's reflex-buildd metrics (see the module doc).

    Call it in every worker (at import of the host module, like ``mount``):
    it starts counting in that process.

    Args:
        settings: Where the workers' counters go (default: ``Settings.load()``).

    Raises:
        InvalidConfigError: prometheus_client is not installed.
        ReflexBuilddError: The default directory is not private to this user.
    """
    if settings is None:
        from .settings import Settings

        settings = Settings.load()
    directory = multiprocess_dir(settings)
    _multiprocess(directory)
    metrics.start()
    from .serve import http

    http.count_served = metrics.counter_of_served()
    return _MetricsApp(directory)


def serve_daemon_metrics(host: str, port: int) -> Any:
    """Serve this process's counters on ``http://HOST:PORT/`` (any path) in a thread.

    Returns:
        The server (``shutdown()`` it to stop).

    Raises:
        InvalidConfigError: prometheus_client is not installed.
        OSError: The address cannot be bound.
    """
    try:
        from prometheus_client import CollectorRegistry, start_http_server, values
    except ImportError:
        raise InvalidConfigError(
            "watch --metrics needs prometheus_client: pip install prometheus_client"
        ) from None
    # One process: plain in-memory values, whatever PROMETHEUS_MULTIPROC_DIR says
    # (a host's directory must not receive the daemon's counters).
    values.ValueClass = values.MutexValue
    registry = CollectorRegistry()
    metrics.start(registry)
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server
