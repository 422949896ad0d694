"""Filesystem changes of a project, as debounced batches (watchdog).

Events are only a hint: the daemon re-keys after each batch, and the key
alone decides whether anything changed (so a save that leaves the bytes
unchanged, or a change to a file that is not an input, starts no build).
Events inside directories that are never inputs (``.web``, ``node_modules``,
``__pycache__``, ``.git``, ...) are dropped early so that busy tools writing
there do not keep waking the daemon, and so are editors' temporary files
(``sedIqBlhE`` of ``sed -i``, vim's ``4913`` and ``.swp``, ``x~``, ``.#x``).

inotify is used where it works; network mounts and many container volumes
deliver no events, so ``poll=True`` (or ``REFLEX_BUILDD_POLL=1``, or an
inotify that fails to start) uses watchdog's polling observer instead.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from reflex_buildd_client.keys.tempfiles import is_editor_temp
from reflex_buildd_client.keys.walk import EXCLUDED_DIRS

__all__ = ["ChangeWatcher"]

logger = logging.getLogger("reflex_buildd")


class _Handler(FileSystemEventHandler):
    def __init__(self, root: Path, out: queue.Queue[str], ignored: frozenset[str]) -> None:
        self._root = root
        self._out = out
        self._ignored = ignored

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if not raw:
                continue
            path = os.fsdecode(raw)
            try:
                rel = Path(path).relative_to(self._root)
            except ValueError:
                continue
            if any(part in self._ignored for part in rel.parts[:-1] or rel.parts):
                continue
            if event.is_directory and event.event_type == "modified":
                continue
            # A save through a temp file also renames it over the real one:
            # that second event names the file that changed.
            if not event.is_directory and is_editor_temp(rel.name):
                continue
            self._out.put(rel.as_posix())


class ChangeWatcher:
    """Watch ``root``; :meth:`next_batch` returns the paths changed in one burst.

    Args:
        root: The project directory.
        poll: Use polling instead of inotify (the daemon passes ``REFLEX_BUILDD_POLL``).
        debounce: Quiet time that ends a burst of saves.
        max_delay: Longest a burst may keep a batch open.
        ignored_dirs: Extra directory names to ignore (e.g. the cache's).
    """

    def __init__(
        self,
        root: Path,
        *,
        poll: bool = False,
        debounce: float = 0.1,
        max_delay: float = 2.0,
        ignored_dirs: frozenset[str] = frozenset(),
    ) -> None:
        self.root = root
        self.debounce = debounce
        self.max_delay = max_delay
        self._events: queue.Queue[str] = queue.Queue()
        self._handler = _Handler(root, self._events, EXCLUDED_DIRS | ignored_dirs)
        self.polling = poll
        self._observer: BaseObserver | None = None

    def start(self) -> None:
        """Start watching; falls back to polling if inotify cannot start."""
        observer: BaseObserver = PollingObserver(timeout=0.5) if self.polling else Observer()
        observer.schedule(self._handler, str(self.root), recursive=True)
        try:
            observer.start()
        except OSError as exc:
            if self.polling:
                raise
            logger.warning("reflex-buildd: inotify unavailable (%s); polling instead", exc)
            self.polling = True
            observer = PollingObserver(timeout=0.5)
            observer.schedule(self._handler, str(self.root), recursive=True)
            observer.start()
        self._observer = observer

    def stop(self) -> None:
        """Stop the observer thread (waits for it, with a timeout)."""
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None

    def next_batch(self, stop: threading.Event, timeout: float | None = None) -> set[str] | None:
        """Block until a burst of changes settles; None on ``stop`` or ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        first: str | None = None
        while first is None:
            if stop.is_set() or (deadline is not None and time.monotonic() >= deadline):
                return None
            try:
                first = self._events.get(timeout=0.1)
            except queue.Empty:
                continue
        batch = {first}
        opened = time.monotonic()
        quiet_until = opened + self.debounce
        while True:
            now = time.monotonic()
            if now >= quiet_until or now - opened >= self.max_delay or stop.is_set():
                return batch
            try:
                batch.add(self._events.get(timeout=min(quiet_until - now, 0.1)))
                quiet_until = time.monotonic() + self.debounce
            except queue.Empty:
                continue
