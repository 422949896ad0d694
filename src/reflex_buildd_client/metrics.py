"""Prometheus metrics: what the cache, the remote tier and the mount did, counted live.

Nothing is counted, and prometheus_client (the ``metrics`` extra) is not even
imported, until a process asks for metrics: a host that mounts
:func:`~reflex_buildd_client.exposition.metrics_app`, or ``reflex-buildd watch
--metrics``. Until then every hook below is one ``is None`` test.

The events are the cache journal's (:func:`.cache.status.append_journal`
calls :func:`journal_event` before it writes, so a read-only cache counts
too): ``hit``/``miss`` lookups, ``published``/``failed``/``cancelled`` builds
(with seconds), ``pulled`` (bytes)/``remote-miss``/``remote-error``/
``remote-refused`` (reason) pulls, ``pushed`` (bytes). Beside them: waits for
another process's build (:func:`waited`), push results the journal does not
keep (:func:`pushed`), backend restarts (:func:`backend_restarted`), and the
responses the mount serves (:func:`served`).

Served responses are the hot path (a static request costs about 2.5 µs of
Python), and an increment of a multi-process counter costs about 1 µs (a lock,
a pid check, a write into the mmap'd file). So each (precomputed headers
tuple, status) gets a tally slot, found by the tuple's identity, and a request
only adds one to a plain int; a thread of this process moves the tallies into
the counters every :data:`FLUSH_INTERVAL` seconds, at each scrape this process
answers, and at exit. Only the request path writes a tally and only the
flusher writes what it has moved, so no count is lost between them; another
worker's latest second may be missing from a scrape.

Several workers of one host count into one directory in prometheus_client's
multi-process mode (``PROMETHEUS_MULTIPROC_DIR`` if set; else a private
directory of ours per server, see :mod:`.exposition`), so a scrape of any
worker reports them all. The daemon counts in its own process.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

__all__ = [
    "METRIC_NAMES",
    "backend_restarted",
    "counter_of_served",
    "enabled",
    "flush",
    "journal_event",
    "pushed",
    "served",
    "start",
    "waited",
]

# Buckets in seconds: a hit waits for nothing, a build takes 5 to 60 s.
_WAIT_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)
_BUILD_BUCKETS = (1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 900.0)
# Memo of served-response counters per headers tuple: precomputed responses
# are few (files x encodings x GET/HEAD/304); one-off ones (206) are not kept.
_MAX_SERVED_MEMO = 8192
FLUSH_INTERVAL = 1.0

METRIC_NAMES = (
    "reflex_buildd_artifact_lookups_total",
    "reflex_buildd_artifact_wait_seconds",
    "reflex_buildd_builds_total",
    "reflex_buildd_build_seconds",
    "reflex_buildd_remote_pulls_total",
    "reflex_buildd_remote_pushes_total",
    "reflex_buildd_remote_bytes_total",
    "reflex_buildd_remote_refusals_total",
    "reflex_buildd_served_responses_total",
    "reflex_buildd_backend_restarts_total",
)


class _Metrics:
    """The metric objects of this process (made once, by :func:`start`)."""

    def __init__(self, registry: Any) -> None:
        self._define(registry)
        # id(headers) -> [headers, status, child, counted, moved]: "counted" is
        # written by the request path only, "moved" by the flusher only.
        self._tallies: dict[int, list[Any]] = {}
        self._flush_lock = threading.Lock()

    def _define(self, registry: Any) -> None:
        """Make the metric objects (see docs/reference.md#metrics)."""
        from prometheus_client import Counter, Histogram

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Any:
            return Counter(name.removesuffix("_total"), doc, labels, registry=registry)

        self.lookups = counter(
            "reflex_buildd_artifact_lookups_total",
            "Artifact lookups by result: hit (in the local cache) or miss.",
            ("result",),
        )
        self.wait_seconds = Histogram(
            "reflex_buildd_artifact_wait_seconds",
            "Waits for an artifact another process built, in seconds.",
            buckets=_WAIT_BUCKETS,
            registry=registry,
        )
        self.builds = counter(
            "reflex_buildd_builds_total",
            "Builds by outcome: published, failed, cancelled.",
            ("outcome",),
        )
        self.build_seconds = Histogram(
            "reflex_buildd_build_seconds",
            "Seconds of each published build.",
            buckets=_BUILD_BUCKETS,
            registry=registry,
        )
        self.pulls = counter(
            "reflex_buildd_remote_pulls_total",
            "Remote lookups by result: pulled, miss, error, refused.",
            ("result",),
        )
        self.pushes = counter(
            "reflex_buildd_remote_pushes_total",
            "Pushes by result: pushed, present, error, refused.",
            ("result",),
        )
        self.bytes = counter(
            "reflex_buildd_remote_bytes_total",
            "Bytes moved to or from the remote: received, sent.",
            ("direction",),
        )
        self.refusals = counter(
            "reflex_buildd_remote_refusals_total",
            "Remote artifacts refused, by reason.",
            ("reason",),
        )
        self.served = counter(
            "reflex_buildd_served_responses_total",
            "Responses the mount served itself, by status and content encoding.",
            ("status", "encoding"),
        )
        self.restarts = counter(
            "reflex_buildd_backend_restarts_total",
            "Restarts of process-mode backends after they died.",
        )

    def on_event(self, event: str, fields: Mapping[str, Any]) -> None:
        if event in ("hit", "miss"):
            self.lookups.labels(event).inc()
        elif event == "published":
            self.builds.labels("published").inc()
            self.build_seconds.observe(float(fields.get("seconds", 0.0)))
        elif event in ("failed", "cancelled"):
            self.builds.labels(event).inc()
        elif event == "pulled":
            self.pulls.labels("pulled").inc()
            self.bytes.labels("received").inc(int(fields.get("bytes", 0)))
        elif event in ("remote-miss", "remote-error"):
            self.pulls.labels(event.removeprefix("remote-")).inc()
        elif event == "remote-refused":
            self.pulls.labels("refused").inc()
            self.refusals.labels(str(fields.get("reason", "refused"))).inc()
        elif event == "pushed":
            self.pushes.labels("pushed").inc()
            self.bytes.labels("sent").inc(int(fields.get("bytes_sent", 0)))

    def count(self, status: int, headers: Any) -> None:
        """Count one response (the hot path: see the module doc)."""
        tally = self._tallies.get(id(headers))
        # The tally holds the tuple itself, so its id is never reused while kept.
        if tally is not None and tally[0] is headers and tally[1] == status:
            tally[3] += 1
        else:
            self._first(status, headers)

    def _first(self, status: int, headers: Any) -> None:
        encoding = "identity"
        for name, value in headers:
            if name == b"content-encoding":
                encoding = value.decode("latin-1")
                break
        child = self.served.labels(str(status), encoding)
        if len(self._tallies) < _MAX_SERVED_MEMO:
            self._tallies.setdefault(id(headers), [headers, status, child, 0, 0])[3] += 1
        else:  # one-off responses past the bound: counted at once
            child.inc()

    def flush(self) -> None:
        """Move the served-response tallies into their counters."""
        with self._flush_lock:
            for tally in list(self._tallies.values()):
                counted = tally[3]
                if counted != tally[4]:
                    tally[2].inc(counted - tally[4])
                    tally[4] = counted


_active: _Metrics | None = None
_start_lock = threading.Lock()


def start(registry: Any = None) -> None:
    """Start counting in this process (idempotent; the first registry given wins).

    Args:
        registry: Where single-process metrics register (None: none, for
            multi-process mode, whose collector reads the files instead).

    Raises:
        ImportError: prometheus_client is not installed.
    """
    global _active
    with _start_lock:
        if _active is None:
            _active = _Metrics(registry)
            _start_flusher()
            atexit.register(flush)
            # A worker forked from a process that counted (gunicorn --preload)
            # gets no threads: it starts its own flusher.
            os.register_at_fork(after_in_child=_start_flusher)


def _start_flusher() -> None:
    def loop() -> None:
        while True:
            time.sleep(FLUSH_INTERVAL)
            flush()

    threading.Thread(target=loop, name="reflex-buildd-metrics", daemon=True).start()


def flush() -> None:
    """Move this process's served-response tallies into the counters (before a scrape)."""
    if (active := _active) is not None:
        active.flush()


def counter_of_served() -> Any:
    """The function that counts one served response (``None`` until :func:`start`)."""
    return None if _active is None else _active.count


def enabled() -> bool:
    """Whether this process counts."""
    return _active is not None


def journal_event(event: str, fields: Mapping[str, Any]) -> None:
    """Count one cache-journal event (a no-op until :func:`start`)."""
    if (active := _active) is not None:
        active.on_event(event, fields)


def waited(seconds: float) -> None:
    """Count one wait for an artifact another process built."""
    if (active := _active) is not None:
        active.wait_seconds.observe(seconds)


def pushed(result: str) -> None:
    """Count a push that wrote no manifest: ``present``, ``error`` or ``refused``."""
    if (active := _active) is not None:
        active.pushes.labels(result).inc()


def backend_restarted() -> None:
    """Count one restart of a process-mode backend."""
    if (active := _active) is not None:
        active.restarts.inc()


def served(status: int, headers: Any) -> None:
    """Count one response the mount sent (see the module doc; the mount itself calls
    :func:`counter_of_served`'s function directly)."""
    if (active := _active) is not None:
        active.count(status, headers)
