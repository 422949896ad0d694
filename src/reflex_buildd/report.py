"""What the daemon tells its operator.

:class:`Reporter` writes to stderr. On a terminal: colours, and while a build
runs one status line with its phase and elapsed time (rich). Otherwise
(systemd, supervisor, containers, a pipe): one plain, timestamped line per
event, and a progress line at each build phase and every few seconds, so
journald and log shippers get something greppable and never a silent minute.

:class:`JsonReporter` (``watch --json``) writes the same events as JSON lines
on stdout, for tools: ``{"time", "event", ...}``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

from rich.console import Console

from reflex_buildd_client.cache.store import Cache
from reflex_buildd_client.errors import BuildFailedError
from reflex_buildd_client.project import Project

from .progress import Progress

__all__ = ["JsonReporter", "Reporter"]


def _shown(changed: list[str]) -> str:
    more = f" (+{len(changed) - 3} more)" if len(changed) > 3 else ""
    return ", ".join(changed[:3]) + more


class Reporter:
    """Prints daemon events on a console; safe to call from the build thread.

    Args:
        console: Where to print (default: stderr).
        quiet: Only failures and errors (``-q``).
    """

    def __init__(self, console: Console | None = None, *, quiet: bool = False) -> None:
        self.console = console or Console(stderr=True, highlight=False, soft_wrap=True)
        self.quiet = quiet
        self._lock = threading.Lock()
        self._progress: Progress | None = None

    def _line(self, text: str, style: str = "", *, always: bool = False) -> None:
        if self.quiet and not always:
            return
        stamp = time.strftime("%H:%M:%S")
        with self._lock:
            if self.console.is_terminal:
                self.console.print(f"[dim]{stamp}[/dim] {text}", style=style or None)
            else:
                self.console.print(f"{stamp} reflex-buildd: {text}", markup=False)

    def started(self, project: Project, cache: Cache, *, polling: bool) -> None:
        how = "polling" if polling else "inotify"
        self._line(f"watching {project.root} ({how}), cache {cache.root}")

    def key_changed(self, key: str, changed: list[str]) -> None:
        if changed:
            self._line(f"changed: {_shown(changed)} -> key {key}")
        else:
            self._line(f"key {key}")

    def unchanged(self, changed: list[str]) -> None:
        self._line(f"ignored (not a build input or no content change): {_shown(changed)}")

    def already_built(self, key: str) -> None:
        """The key's artifact is in the cache already (an edit undone, a branch switched back)."""
        self._line(f"already built: {key} (in the cache, nothing to do)", "green")

    def build_started(self, key: str) -> None:
        self._line(f"build started: {key}")
        with self._lock:
            self._progress = Progress(self.console, f"building {key}", quiet=self.quiet)
            self._progress.start()

    def phase(self, key: str, phase: str) -> None:
        """The running build of ``key`` entered ``phase``."""
        if (progress := self._progress) is not None:
            progress.set_phase(phase)

    def _stop_progress(self) -> None:
        with self._lock:
            progress, self._progress = self._progress, None
        if progress is not None:
            progress.stop()

    def build_done(self, key: str, seconds: float) -> None:
        self._stop_progress()
        self._line(f"build published: {key} in {seconds:.2f}s", "green")

    def pulled(self, key: str, seconds: float) -> None:
        self._line(f"pulled from the remote: {key} in {seconds:.2f}s", "green")

    def pushed(self, summary: str) -> None:
        self._line(summary, "green")

    def build_cancelled(self, key: str) -> None:
        self._stop_progress()
        self._line(f"build cancelled: {key} (superseded or stopping)", "yellow")

    def build_failed(self, key: str, exc: BuildFailedError) -> None:
        self._stop_progress()
        self._line(f"build failed: {key}: {exc}", "red", always=True)
        if exc.log_tail:
            with self._lock:
                self.console.print(exc.log_tail, markup=False, highlight=False)

    def error(self, text: str) -> None:
        self._line(f"error: {text}", "red", always=True)

    def stopped(self) -> None:
        self._stop_progress()
        self._line("stopped")


class JsonReporter(Reporter):
    """The daemon's events as JSON lines on stdout (``watch --json``)."""

    def __init__(self) -> None:
        super().__init__(Console(stderr=True, highlight=False, soft_wrap=True))
        self._started: dict[str, float] = {}

    def _emit(self, event: str, **fields: Any) -> None:
        line = json.dumps({"time": round(time.time(), 3), "event": event, **fields})
        with self._lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def started(self, project: Project, cache: Cache, *, polling: bool) -> None:
        self._emit("watching", project=str(project.root), cache=str(cache.root), polling=polling)

    def key_changed(self, key: str, changed: list[str]) -> None:
        self._emit("key", key=key, changed=changed)

    def unchanged(self, changed: list[str]) -> None:
        self._emit("ignored", changed=changed)

    def already_built(self, key: str) -> None:
        self._emit("already_built", key=key)

    def build_started(self, key: str) -> None:
        self._started[key] = time.monotonic()
        self._emit("build_started", key=key)

    def phase(self, key: str, phase: str) -> None:
        elapsed = time.monotonic() - self._started.get(key, time.monotonic())
        self._emit("phase", key=key, phase=phase, elapsed=round(elapsed, 3))

    def build_done(self, key: str, seconds: float) -> None:
        self._emit("published", key=key, seconds=round(seconds, 3))

    def build_cancelled(self, key: str) -> None:
        self._emit("cancelled", key=key)

    def build_failed(self, key: str, exc: BuildFailedError) -> None:
        self._emit("failed", key=key, error=str(exc), log_tail=exc.log_tail)

    def error(self, text: str) -> None:
        self._emit("error", error=text)

    def stopped(self) -> None:
        self._emit("stopped")
