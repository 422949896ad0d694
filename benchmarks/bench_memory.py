"""Resident memory of the daemon and of a mount, against baselines from the same run.

- Daemon: RSS of ``reflex-buildd watch`` idle on the showcase, and watching a large tree
  (the showcase plus 5,000 files in 500 directories), against a bare Python process that
  imported the same modules (the floor for any daemon written in Python).
- Host: RSS of a FastAPI host without a mount (baseline), with the showcase mounted and
  one prefix served, and with 2, 4 and 8 prefixes served: what the first mount adds, and
  what each further prefix adds.

Run: ``.venv/bin/python benchmarks/bench_memory.py`` (about a minute).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from conftest import SHOWCASE, run_cli, spawn_host, stop_process, tool_env, wait_ready  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def settle(pid: int, seconds: float = 2.0) -> float:
    time.sleep(seconds)
    return rss_mb(pid)


def daemon_rss(project: Path, cache: Path, log: Path) -> float:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reflex_buildd",
                "watch",
                str(project),
                "--cache-dir",
                str(cache),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=tool_env(),
        )
    try:
        deadline = time.monotonic() + 300
        while "published" not in log.read_text() and "key " not in log.read_text():
            if time.monotonic() > deadline:
                raise TimeoutError(log.read_text())
            time.sleep(0.2)
        time.sleep(1.0)
        while "build started" in log.read_text() and "published" not in log.read_text():
            time.sleep(0.2)
        return settle(proc.pid, 3.0)
    finally:
        stop_process(proc)


def floor_rss() -> float:
    code = "import reflex_buildd.daemon, reflex_buildd.build, time; print('ready', flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=tool_env())
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        return settle(proc.pid, 1.0)
    finally:
        stop_process(proc)


def host_rss(paths: list[str], cache: Path, tmp: Path) -> float:
    host = spawn_host(
        "memory_host:app",
        cache_dir=cache,
        log_dir=tmp,
        PYTHONPATH=f"{REPO / 'benchmarks'}:{REPO}",
        MOUNT_PATHS=",".join(paths),
        REFLEX_UPLOADED_FILES_DIR=str(tmp / "uploads"),
        REFLEX_STATES_WORKDIR=str(tmp / "states"),
        REFLEX_BUILDD_POLICY="fail",
    )
    try:
        wait_ready(host, "/health", timeout=120)
        for path in paths:  # serve each prefix once: that prepares it
            for page in ("/", "/about", "/nope"):
                try:
                    urllib.request.urlopen(host.url + path + page, timeout=10).read()
                except OSError:
                    pass
        return settle(host.process.pid, 2.0)
    finally:
        stop_process(host.process)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp_name:
        tmp = Path(tmp_name)
        cache = tmp / "cache"
        assert run_cli("build", str(SHOWCASE), cache_dir=cache).returncode == 0

        floor = floor_rss()
        small = daemon_rss(SHOWCASE, cache, tmp / "daemon-small.log")
        large_project = tmp / "large"
        shutil.copytree(SHOWCASE, large_project, ignore=shutil.ignore_patterns("__pycache__"))
        for d in range(500):
            folder = large_project / "data" / f"d{d:03}"
            folder.mkdir(parents=True)
            for f in range(10):
                (folder / f"f{f}.txt").write_text(f"file {d}/{f}\n" * 20)
        large = daemon_rss(large_project, cache, tmp / "daemon-large.log")

        base = host_rss([], cache, tmp)
        served = {n: host_rss([f"/p{i}" for i in range(n)], cache, tmp) for n in (1, 2, 4, 8)}

    print(f"python floor (daemon modules imported)     {floor:7.1f} MB")
    print(
        f"daemon idle, showcase                      {small:7.1f} MB  = {small / floor:4.2f}x floor"
    )
    print(
        f"daemon idle, showcase + 5,000 files        {large:7.1f} MB  = {large / floor:4.2f}x floor"
    )
    print(f"host without a mount (baseline)            {base:7.1f} MB")
    for n, rss in served.items():
        print(
            f"host, showcase mounted, {n} prefix(es) served {rss:7.1f} MB  = {rss / base:4.2f}x baseline"
        )
    per_prefix = (served[8] - served[1]) / 7
    print(
        f"first mount adds {served[1] - base:.1f} MB (Reflex, the app, the artifact); "
        f"each further prefix adds {per_prefix:.2f} MB"
    )


if __name__ == "__main__":
    main()
