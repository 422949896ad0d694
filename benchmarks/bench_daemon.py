"""The daemon's latency and the cost of many workers, measured in one run.

- Edit to publish: seconds from saving a one-line edit to the new artifact
  being published by ``reflex-buildd watch``, against a plain ``reflex
  export`` (warm ``.web``) of the same app. Goal: at most 1.1x.
- Time until N = 1, 4, 8 uvicorn hosts (separate processes, empty cache, no
  daemon, default policy ``build``) all serve ``/admin/``, against one
  ``reflex-buildd build`` on an empty cache.

Run: ``.venv/bin/python benchmarks/bench_daemon.py`` (about three minutes).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_build import buildd, plain_export  # noqa: E402
from conftest import SHOWCASE, spawn_host, stop_process, tool_env, wait_ready  # noqa: E402
from reflex_buildd_client.inputs.sources import compute_key  # noqa: E402
from reflex_buildd_client.project import find_project  # noqa: E402
from reflex_buildd_client.settings import Settings  # noqa: E402

EDITS = 3


def edit_to_publish(project: Path, cache: Path, log: Path) -> list[float]:
    page = project / "showcase" / "showcase.py"
    with log.open("wb") as out:
        daemon = subprocess.Popen(
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
        proj = find_project(project)
        latencies = []
        for i in range(EDITS + 1):
            if i:
                page.write_text(page.read_text() + f"\n# benchmark edit {i}\n")
            saved = time.perf_counter()
            key, _ = compute_key(proj, settings=Settings.load(), cache_dir=cache)
            manifest = cache / "v1" / "artifacts" / key / "manifest.json"
            deadline = saved + 300
            while not manifest.exists():
                if time.perf_counter() > deadline:
                    raise TimeoutError(log.read_text())
                time.sleep(0.02)
            if i:  # the first one is the daemon's initial (cold) build
                latencies.append(time.perf_counter() - saved)
        return latencies
    finally:
        stop_process(daemon)


def workers_until_serving(n: int, tmp: Path) -> float:
    cache = tmp / f"cache-{n}"
    env = {
        "SHOWCASE_PROJECT": str(SHOWCASE),
        "REFLEX_UPLOADED_FILES_DIR": str(tmp / "uploads"),
        "REFLEX_STATES_WORKDIR": str(tmp / "states"),
    }
    started = time.perf_counter()
    hosts = [
        spawn_host("examples.hosts.fastapi_host:app", cache_dir=cache, log_dir=tmp, **env)
        for _ in range(n)
    ]
    try:
        for host in hosts:
            wait_ready(host, "/admin/", timeout=600)
        return time.perf_counter() - started
    finally:
        for host in hosts:
            stop_process(host.process)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-daemon-") as tmp_name:
        tmp = Path(tmp_name)
        project = tmp / "showcase"
        shutil.copytree(SHOWCASE, project, ignore=shutil.ignore_patterns("__pycache__"))
        plain_export(project, tmp / "web")  # warm the package cache and .web
        export = statistics.median(plain_export(project, tmp / "web") for _ in range(EDITS))
        latencies = edit_to_publish(project, tmp / "cache-daemon", tmp / "daemon.log")
        one_build = buildd(SHOWCASE, tmp / "cache-one")
        workers = {n: workers_until_serving(n, tmp) for n in (1, 4, 8)}

    latency = statistics.median(latencies)
    print(f"plain reflex export (warm .web)       {export:7.3f} s")
    print(f"daemon: edit saved -> published       {latency:7.3f} s  (median of {EDITS})")
    print(f"  ratio edit->publish / export        {latency / export:7.2f}x  (goal <= 1.1x)")
    print(f"one reflex-buildd build, empty cache  {one_build:7.3f} s")
    for n, seconds in workers.items():
        print(
            f"{n} host(s) all serving, empty cache  {seconds:7.3f} s  = {seconds / one_build:5.2f}x one build"
        )


if __name__ == "__main__":
    main()
