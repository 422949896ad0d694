"""The watcher: debounced batches, ignored directories, inotify and polling."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from reflex_buildd.watch import ChangeWatcher


@pytest.fixture(params=[False, True], ids=["inotify", "polling"])
def watcher(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__pycache__").mkdir()
    (tmp_path / ".web").mkdir()
    w = ChangeWatcher(tmp_path, poll=request.param, debounce=0.2)
    w.start()
    assert w.polling is request.param
    time.sleep(0.6)  # the polling observer's first snapshot
    try:
        yield w
    finally:
        w.stop()


def test_a_burst_of_saves_is_one_batch(watcher: ChangeWatcher) -> None:
    stop = threading.Event()
    for i in range(5):
        (watcher.root / "app" / "page.py").write_text(f"x = {i}\n")
        time.sleep(0.02)
    (watcher.root / "rxconfig.py").write_text("config = 1\n")
    # Six writes make one batch (inotify) or two (a polling sweep, or a slow
    # scheduler, may land inside the burst): debouncing, not one per save.
    seen: set[str] = set()
    batches = 0
    while not {"app/page.py", "rxconfig.py"} <= seen:
        batch = watcher.next_batch(stop, timeout=10)
        assert batch is not None, seen
        seen |= batch
        batches += 1
    assert batches <= 2
    # Settled: nothing more arrives.
    assert watcher.next_batch(stop, timeout=1.5) is None


def test_ignored_directories_wake_nobody(watcher: ChangeWatcher) -> None:
    stop = threading.Event()
    (watcher.root / "app" / "__pycache__" / "page.cpython-311.pyc").write_bytes(b"\0")
    (watcher.root / ".web" / "bundle.js").write_text("x")
    assert watcher.next_batch(stop, timeout=1.5) is None


def test_stop_ends_a_wait(watcher: ChangeWatcher) -> None:
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    assert watcher.next_batch(stop, timeout=30) is None
    assert time.monotonic() - started < 25  # returned on stop, not on the timeout
