"""A waiting host (policy wait) with no live daemon: said at once, given up after the grace."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from conftest import SHOWCASE, spawn_host, stop_process
from reflex_buildd_client.cache.status import write_daemon
from reflex_buildd_client.cache.store import Cache
from reflex_buildd_client.errors import InvalidConfigError
from reflex_buildd_client.settings import Settings
from reflex_buildd_client.startup.nodaemon import DaemonGrace


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_grace_runs_only_while_no_daemon_lives(tmp_path: Path) -> None:
    cache, root, clock = Cache(tmp_path / "cache"), tmp_path / "proj", _Clock()
    grace = DaemonGrace(cache, root, grace=5.0, clock=clock)
    assert grace() is None  # no daemon: the grace period starts
    clock.now += 4.9
    assert grace() is None
    # A daemon appears (this process, so alive): waiting is right again.
    write_daemon(cache, root, key="k", state="building", inputs={})
    clock.now += 10
    assert grace() is None
    # It dies (a dead pid in its record): a new grace period starts then.
    record = cache.base / "daemons"
    for path in record.glob("*.json"):
        path.write_text(path.read_text().replace(f'"pid": {os.getpid()}', '"pid": 0'))
    assert grace() is None
    clock.now += 5.0
    message = grace()
    assert message is not None
    assert f"reflex-buildd watch {root} --cache-dir {cache.root}" in message
    assert f"reflex-buildd build {root} --cache-dir {cache.root}" in message
    assert "PROJECT" not in message


def test_grace_from_settings() -> None:
    assert Settings.load(environ={}).daemon_grace == 10.0
    assert Settings.load(environ={"REFLEX_BUILDD_DAEMON_GRACE": "2.5"}).daemon_grace == 2.5
    for bad in ("soon", "-1"):
        with pytest.raises(InvalidConfigError, match="REFLEX_BUILDD_DAEMON_GRACE"):
            Settings.load(environ={"REFLEX_BUILDD_DAEMON_GRACE": bad})


@pytest.mark.slow
def test_a_waiting_host_without_a_daemon_fails_within_its_grace(tmp_path: Path) -> None:
    project, cache = tmp_path / "proj", tmp_path / "cache"
    shutil.copytree(SHOWCASE, project, ignore=shutil.ignore_patterns("__pycache__"))
    started = time.monotonic()
    host = spawn_host(
        "examples.hosts.fastapi_host:app",
        cache_dir=cache,
        log_dir=tmp_path,
        SHOWCASE_PROJECT=str(project),
        REFLEX_BUILDD_POLICY="wait",
        REFLEX_BUILDD_TIMEOUT="300",
        REFLEX_BUILDD_DAEMON_GRACE="3",
    )
    try:
        code = host.process.wait(timeout=60)
    finally:
        stop_process(host.process)
    elapsed = time.monotonic() - started
    output = host.output()
    assert code != 0, output
    # The grace (3 s) plus a host's start, far from the 300 s timeout.
    assert elapsed < 30, (elapsed, output)
    said = output.index(f"no daemon watches {project} (policy 'wait')")
    gave_up = output.index("no daemon watched")
    assert said < gave_up, output
    assert f"reflex-buildd watch {project} --cache-dir {cache}" in output
    assert "PROJECT" not in output, output
    assert not (cache / "v1" / "artifacts").exists() or not any((cache / "v1/artifacts").iterdir())
