"""Build and startup costs of the showcase example, all measured in one run.

Prints the time of a plain ``reflex export``, of ``reflex-buildd build`` on a
miss (cold and warm workspace) and on a hit, of host startup to the first 200
on a hit, and of the client's own startup work (keying, opening the artifact,
preparing it for its prefix), with the ratios the issue sets goals for:

- client's own work vs an export: goal >= 50x faster;
- host startup on a hit vs export-then-start (what users do today): goal >= 8x
  (the static side answers before the backend has loaded; the same host with
  ``REFLEX_BUILDD_BACKEND_START=startup`` is measured beside it, and the floor
  of any FastAPI host: importing fastapi and uvicorn).

Run: ``.venv/bin/python benchmarks/bench_build.py`` (about two minutes).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHOWCASE = REPO / "examples" / "showcase"
sys.path.insert(0, str(REPO / "tests"))

from conftest import free_port, tool_env  # noqa: E402
from reflex_buildd_client.inputs.runtime import resolve_runtime  # noqa: E402
from reflex_buildd_client.settings import Settings  # noqa: E402

REPEAT = 3


def timed(cmd: list[str], **kwargs: object) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, timeout=600, **kwargs)  # type: ignore[call-overload]
    return time.perf_counter() - started


def plain_export(project: Path, web: Path) -> float:
    env = tool_env(REFLEX_WEB_WORKDIR=str(web), **resolve_runtime(settings=Settings.load()).env)
    cmd = [sys.executable, "-m", "reflex", "export", "--frontend-only", "--no-zip"]
    return timed(cmd, cwd=project, env=env)


def buildd(project: Path, cache: Path) -> float:
    cmd = [sys.executable, "-m", "reflex_buildd", "build", str(project), "--cache-dir", str(cache)]
    return timed(cmd, env=tool_env())


def host_startup(cache: Path, workdir: Path, **extra: str) -> float:
    """Seconds from spawning uvicorn to the first 200 on /admin/."""
    port = free_port()
    env = tool_env(
        REFLEX_BUILDD_CACHE_DIR=str(cache),
        SHOWCASE_MOUNT_PATH="/admin",
        REFLEX_UPLOADED_FILES_DIR=str(workdir / "uploads"),
        REFLEX_STATES_WORKDIR=str(workdir / "states"),
        **extra,
    )
    log = workdir / "host.log"
    started = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "examples.hosts.fastapi_host:app",
                "--port",
                str(port),
            ],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = started + 300
        while time.perf_counter() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/", timeout=2) as r:
                    if r.status == 200:
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.02)
        raise TimeoutError(f"host did not start:\n{log.read_text(errors='replace')[-3000:]}")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


_CLIENT_WORK = """
import json, sys, time
from reflex_buildd_client.mount import ReflexMount
from reflex_buildd_client.settings import Settings
started = time.perf_counter()
m = ReflexMount(sys.argv[1], cache_dir=sys.argv[2])
m.open_artifact()
m.site("/admin")
print(json.dumps({"seconds": time.perf_counter() - started, "timings": m.timings}))
"""


def _import_floor() -> float:
    return timed([sys.executable, "-c", "import fastapi, uvicorn"], env=tool_env())


def client_work(cache: Path) -> float:
    """The client's own startup work in a fresh process (no warm memo)."""
    out = subprocess.run(
        [sys.executable, "-c", _CLIENT_WORK, str(SHOWCASE), str(cache)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
        env=tool_env(),
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["seconds"])


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp_name:
        tmp = Path(tmp_name)
        project = tmp / "showcase"
        shutil.copytree(SHOWCASE, project, ignore=shutil.ignore_patterns("__pycache__"))

        # Warm the JS package cache once so no row pays the first download.
        plain_export(project, tmp / "warmup-web")

        export_cold = plain_export(project, tmp / "web-cold")
        export_warm = statistics.median(
            plain_export(project, tmp / "web-cold") for _ in range(REPEAT)
        )

        cache = tmp / "cache"
        miss_cold = buildd(SHOWCASE, cache)
        hit = statistics.median(buildd(SHOWCASE, cache) for _ in range(REPEAT))
        # A one-line edit in a copy: a miss on a warm workspace.
        page = project / "showcase" / "showcase.py"
        misses = []
        for i in range(REPEAT):
            page.write_text(page.read_text() + f"\n# edit {i}\n")
            misses.append(buildd(project, cache))
        miss_warm = statistics.median(misses)

        starts = []
        for i in range(REPEAT):
            (tmp / f"host{i}").mkdir()
            starts.append(host_startup(cache, tmp / f"host{i}"))
        start_hit = statistics.median(starts)
        # The same host with its startup waiting for the Reflex backend (the old way).
        eager = []
        for i in range(REPEAT):
            (tmp / f"eager{i}").mkdir()
            eager.append(
                host_startup(cache, tmp / f"eager{i}", REFLEX_BUILDD_BACKEND_START="startup")
            )
        start_eager = statistics.median(eager)
        # The floor of any host: Python with FastAPI and uvicorn imported, nothing mounted.
        floor = statistics.median(_import_floor() for _ in range(REPEAT))
        client = statistics.median(client_work(cache) for _ in range(5))

    rows = [
        ("plain reflex export (cold .web)", export_cold),
        ("plain reflex export (warm .web)", export_warm),
        ("reflex-buildd build, miss, cold workspace", miss_cold),
        ("reflex-buildd build, miss, warm workspace", miss_warm),
        ("reflex-buildd build, hit (CLI process)", hit),
        ("host startup to first 200, hit", start_hit),
        ("  same, backend_start=startup", start_eager),
        ("python importing fastapi + uvicorn (floor)", floor),
        ("client's own startup work, hit", client),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"{'measurement':<{width}}  seconds")
    for name, seconds in rows:
        print(f"{name:<{width}}  {seconds:8.3f}")
    print()
    export_then_start = export_warm + start_hit
    print(f"export (warm) / client's own work       = {export_warm / client:7.1f}x  (goal >= 50x)")
    print(
        f"export-then-start / host start on a hit = {export_then_start / start_hit:7.1f}x  (goal >= 8x)"
    )
    print(
        f"export-then-start / host start, backend_start=startup = "
        f"{(export_warm + start_eager) / start_eager:7.1f}x"
    )
    print(f"host start / its import floor           = {start_hit / floor:7.2f}x")
    print(f"build miss (warm) / plain export (warm) = {miss_warm / export_warm:7.2f}x")
    print(f"build hit / plain export (warm)         = {hit / export_warm:7.3f}x")
    print(
        f"[python {sys.version.split()[0]}, {os.cpu_count()} cpus, runtime {resolve_runtime(settings=Settings.load()).identity}]"
    )


if __name__ == "__main__":
    main()
