"""What the daemon tells its operator, on stderr.

On a terminal: colours and a spinner while a build runs (rich). Otherwise
(systemd, supervisor, containers): one plain, timestamped line per event, so
journald and log shippers get something greppable.
"""

from __future__ import annotations

import threading
import time

from rich.console import Console
from rich.status import Status

from reflex_buildd_client.errors import BuildFailedError
from reflex_buildd_client.project import Project
from reflex_buildd_client.store import Cache

__all__ = ["Reporter"]


class Reporter:
    """Prints daemon events; safe to call from the build thread."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False, soft_wrap=True)
        self._lock = threading.Lock()
        self._status: Status | None = None

    def _line(self, text: str, style: str = "") -> None:
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
            shown = ", ".join(changed[:3]) + (
                f" (+{len(changed) - 3} more)" if len(changed) > 3 else ""
            )
            self._line(f"changed: {shown} -> key {key}")
        else:
            self._line(f"key {key}")

    def unchanged(self, changed: list[str]) -> None:
        self._line(f"ignored (not a build input or no content change): {', '.join(changed[:3])}")

    def build_started(self, key: str) -> None:
        self._line(f"build started: {key}")
        if self.console.is_terminal:
            with self._lock:
                self._status = self.console.status(f"building {key}", spinner="dots")
                self._status.start()

    def _stop_spinner(self) -> None:
        with self._lock:
            if self._status is not None:
                self._status.stop()
                self._status = None

    def build_done(self, key: str, seconds: float) -> None:
        self._stop_spinner()
        self._line(f"build published: {key} in {seconds:.2f}s", "green")

    def pulled(self, key: str, seconds: float) -> None:
        self._line(f"pulled from the remote: {key} in {seconds:.2f}s", "green")

    def pushed(self, summary: str) -> None:
        self._line(summary, "green")

    def build_cancelled(self, key: str) -> None:
        self._stop_spinner()
        self._line(f"build cancelled: {key} (superseded or stopping)", "yellow")

    def build_failed(self, key: str, exc: BuildFailedError) -> None:
        self._stop_spinner()
        self._line(f"build failed: {key}: {exc}", "red")
        if exc.log_tail:
            with self._lock:
                self.console.print(exc.log_tail, markup=False, highlight=False)

    def error(self, text: str) -> None:
        self._line(f"error: {text}", "red")

    def stopped(self) -> None:
        self._stop_spinner()
        self._line("stopped")
