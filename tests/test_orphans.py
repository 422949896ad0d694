"""No orphans: a SIGKILLed daemon's whole process tree is gone before a takeover
build starts in the same workspace (checked in /proc, with real builds).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, tool_env

pytestmark = pytest.mark.slow

SECOND_APP = REPO / "tests" / "fixtures" / "second_app" / "project"


def _processes() -> dict[int, tuple[int, int, str, str]]:
    """pid -> (ppid, session id, start time, command line) of every process."""
    table: dict[int, tuple[int, int, str, str]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path("/proc", name, "stat").read_text()
            cmdline = Path("/proc", name, "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            continue  # exited, waiting to be reaped: runs nothing
        table[int(name)] = (
            int(fields[1]),
            int(fields[3]),
            fields[19],
            cmdline.replace(b"\0", b" ").decode(errors="replace"),
        )
    return table


def _descendants(root: int, table: dict[int, tuple[int, int, str, str]]) -> set[int]:
    found = {root}
    grew = True
    while grew:
        grew = False
        for pid, (ppid, *_rest) in table.items():
            if ppid in found and pid not in found:
                found.add(pid)
                grew = True
    return found - {root}


def _is_bundling(cmdline: str) -> bool:
    """The JS build (``bun run export``): the phase whose processes outlive a killed builder."""
    first = cmdline.split(" ", 1)[0]
    return os.path.basename(first) in {"bun", "node"} and " run export" in cmdline


def test_takeover_starts_after_the_killed_tree_is_gone(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    shutil.copytree(SECOND_APP, project, ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "cache"
    cli = [sys.executable, "-m", "reflex_buildd"]
    log = (tmp_path / "daemon.log").open("wb")
    daemon = subprocess.Popen(
        [*cli, "watch", str(project), "--cache-dir", str(cache)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=tool_env(),
        cwd=tmp_path,
    )
    takeover: subprocess.Popen[bytes] | None = None
    try:
        # Mid-build: the JS bundler runs under the daemon's export (measured
        # before the fix: it outlived a SIGKILLed builder by 2 to 3 s).
        deadline = time.monotonic() + 120
        while True:
            table = _processes()
            tree = _descendants(daemon.pid, table)
            if any(_is_bundling(table[pid][3]) for pid in tree):
                break
            assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()
            assert time.monotonic() < deadline, "the daemon never reached the JS build"
            time.sleep(0.01)
        sessions = {table[pid][1] for pid in tree} - {table[daemon.pid][1]}
        old = {(pid, table[pid][2]) for pid in tree}
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.wait(timeout=10)
        takeover = subprocess.Popen(
            [*cli, "build", str(project), "--cache-dir", str(cache)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=tool_env(),
            cwd=tmp_path,
        )
        table = _processes()
        orphans_at_takeover = any((pid, table[pid][2]) in old for pid in table)
        seen_export = False
        deadline = time.monotonic() + 120
        while takeover.poll() is None and time.monotonic() < deadline:
            table = _processes()
            mine = _descendants(takeover.pid, table)
            if any("reflex export" in table[pid][3] for pid in mine):
                seen_export = True
                alive = [
                    (pid, table[pid][3])
                    for pid in table
                    if pid not in mine
                    and ((pid, table[pid][2]) in old or table[pid][1] in sessions)
                ]
                assert alive == [], f"the killed build's processes still run: {alive}"
            time.sleep(0.005)
        output = takeover.communicate(timeout=120)[0].decode(errors="replace")
        assert takeover.returncode == 0, output
        assert seen_export, "the takeover's export was never seen"
        if orphans_at_takeover:  # as measured every time so far: the takeover killed them
            (build_log,) = (cache / "v1" / "logs").glob("*.log")
            assert "leftover process(es) of an earlier build" in build_log.read_text()
    finally:
        for process in (daemon, takeover):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        log.close()
