"""The watcher: debounced batches, ignored directories, inotify and polling."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from reflex_buildd.watch import ChangeWatcher
from reflex_buildd_client.keys.tempfiles import is_editor_temp


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


def test_editor_temp_files_stay_out_of_the_change_list(watcher: ChangeWatcher) -> None:
    stop = threading.Event()
    page = watcher.root / "app" / "app.py"
    page.write_text("x = 1\n")
    assert watcher.next_batch(stop, timeout=10) == {"app/app.py"}
    # GNU sed -i writes app/sedXXXXXX and renames it over app.py.
    subprocess.run(["sed", "-i", "s/1/2/", str(page)], check=True, timeout=10)
    # vim: its 4913 probe, a swap file, a backup; emacs: a lock file.
    for name in ("4913", ".app.py.swp", "app.py~", ".#app.py", "#app.py#"):
        (watcher.root / "app" / name).write_text("junk")
        (watcher.root / "app" / name).unlink()
    seen: set[str] = set()
    while (batch := watcher.next_batch(stop, timeout=1.5)) is not None:
        seen |= batch
    assert seen == {"app/app.py"}


@pytest.mark.parametrize(
    "name",
    [
        *("sedIqBlhE", "4913", ".x.py.swp", "x.py.swo", "x.py~", ".#x.py", "#x.py#"),
        *("x.py___jb_tmp___", ".goutputstream-ABC123", ".~lock.x.ods#", ".nfs000000001234"),
        *("flycheck_x.py", "x.tmp"),
    ],
)
def test_editor_temp_names(name: str) -> None:
    assert is_editor_temp(name)


@pytest.mark.parametrize("name", ["app.py", "sedan.py", "sediment", "state.py", "swap.py", "4914"])
def test_real_names_are_not_temp(name: str) -> None:
    assert not is_editor_temp(name)
