"""Progress of long work (a build, a wait): its phase and how long it has run.

On a terminal: one rich status line, like Reflex's own, redrawn with the
phase and the elapsed time. Anywhere else (a pipe, a file, journald): a
plain timestamped line at each phase change and every few seconds between
them, so a log shows the work is alive and where it stands, never a silent
minute. Hosts have no console of their own: :class:`LoggedProgress` says the
same through the ``reflex_buildd`` logger.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich is imported by the console itself, when one prints
    from rich.console import Console

__all__ = ["INTERVAL", "LoggedProgress", "Phase", "Progress"]

# Seconds between two lines of unchanged progress where nothing redraws.
INTERVAL = 5.0
_REDRAW = 0.2
# Work shorter than this prints no progress line in a pipe.
_SETTLE = 1.0

logger = logging.getLogger("reflex_buildd")

Phase = Callable[[str], None]


class _Ticker:
    """The phase and start time of some work, and a thread that reports them."""

    def __init__(self, what: str, *, every: float) -> None:
        self.what = what
        self.phase = "starting"
        self._every = every
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def start(self) -> None:
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
        self._thread.start()

    def set_phase(self, phase: str) -> None:
        with self._lock:
            if phase == self.phase:
                return
            self.phase = phase
        self.changed()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.tick()

    def changed(self) -> None:  # pragma: no cover - overridden
        """The phase changed."""

    def tick(self) -> None:  # pragma: no cover - overridden
        """Time passed."""


class Progress(_Ticker):
    """Progress of one piece of work on a console (stderr of the CLI or the daemon).

    Args:
        console: Where to draw or print.
        what: What runs, e.g. ``building 310a0...``.
        quiet: Print nothing (``-q``).
    """

    def __init__(self, console: Console, what: str, *, quiet: bool = False) -> None:
        self._console = console
        self._quiet = quiet
        self._live = console.is_terminal and not quiet
        super().__init__(what, every=_REDRAW if self._live else INTERVAL)
        self._status = console.status(self._text(), spinner="dots") if self._live else None

    def _text(self) -> str:
        return f"{self.what}: {self.phase} [dim]({self.elapsed:.1f}s)[/dim]"

    def _line(self) -> None:
        if self._quiet:
            return
        stamp = time.strftime("%H:%M:%S")
        self._console.print(
            f"{stamp} reflex-buildd: {self.what}: {self.phase} ({self.elapsed:.0f}s)",
            markup=False,
            highlight=False,
        )

    def start(self) -> None:
        super().start()
        # In a pipe, phases of the first second go unsaid: a cache hit then
        # prints nothing but its result, a build its phases from then on.
        if self._status is not None:
            self._status.start()

    def changed(self) -> None:
        if self._status is not None:
            self._status.update(self._text())
        elif self.elapsed >= _SETTLE:
            self._line()

    def tick(self) -> None:
        if self._status is not None:
            self._status.update(self._text())
        else:
            self._line()

    def stop(self) -> None:
        super().stop()
        if self._status is not None:
            self._status.stop()

    def __enter__(self) -> Progress:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class LoggedProgress(_Ticker):
    """Progress through the ``reflex_buildd`` logger (INFO): for hosts and libraries."""

    def __init__(self, what: str, *, every: float = INTERVAL) -> None:
        super().__init__(what, every=every)

    def _log(self) -> None:
        logger.info("reflex-buildd: %s: %s (%.0fs)", self.what, self.phase, self.elapsed)

    def start(self) -> None:
        super().start()
        self._log()

    def changed(self) -> None:
        self._log()

    def tick(self) -> None:
        self._log()
