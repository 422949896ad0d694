"""Build and startup costs of the showcase example, all measured in one run.

Prints the time of a plain ``reflex export``, of ``reflex-buildd build`` on a
miss (cold and warm workspace) and on a hit, of host startup to the first 200
on a hit, and of the client's own startup work (keying, opening the artifact,
preparing it for its prefix), with the ratios the issue sets goals for:

- client's own work vs an export: goal >= 50x faster;
- host startup on a hit vs export-then-start (what users do today): goal >= 8x
  (the static side answers before the backend has loaded; the same host with
  ``REFLEX_BUILDD_BACKEND_START=startup`` is measured beside it, and the floor
  of any FastAPI host: importing fastapi and uvicorn);
- host startup on a hit vs the same host without the mount: goal <= 1.25x
  (``benchmarks/memory_host.py`` with and without ``MOUNT_PATHS``, interleaved,
  each to its first 200).

Our package's bytecode is compiled first, as ``pip install`` does: the hosts
run with ``PYTHONDONTWRITEBYTECODE`` (the example's tree stays clean), and a
checkout without ``__pycache__`` would otherwise compile every module at every
start (about 50 ms here), which no installed package pays.

Run: ``.venv/bin/python benchmarks/bench_build.py`` (about two minutes), or
``--startup-only`` for the host-start rows alone (about half a minute).
"""

from __future__ import annotations

import argparse
import compileall
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


def host_startup(
    cache: Path, workdir: Path, *, app: str = "examples.hosts.fastapi_host:app", **extra: str
) -> float:
    """Seconds from spawning uvicorn with ``app`` to the first 200 on ``/admin/``."""
    return first_200(app, "/admin/", cache, workdir, SHOWCASE_MOUNT_PATH="/admin", **extra)


def first_200(app: str, path: str, cache: Path, workdir: Path, **extra: str) -> float:
    """Seconds from spawning ``uvicorn APP`` to its first 200 on ``path``."""
    port = free_port()
    env = tool_env(
        REFLEX_BUILDD_CACHE_DIR=str(cache),
        REFLEX_UPLOADED_FILES_DIR=str(workdir / "uploads"),
        REFLEX_STATES_WORKDIR=str(workdir / "states"),
        **extra,
    )
    log = workdir / "host.log"
    started = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", app, "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = started + 300
        while time.perf_counter() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                    if r.status == 200:
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.005)  # fine-grained: the rows differ by tens of ms
        raise TimeoutError(f"host did not start:\n{log.read_text(errors='replace')[-3000:]}")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def same_host_with_and_without(cache: Path, tmp: Path, repeat: int) -> dict[str, float]:
    """The first 200 of ``benchmarks/memory_host.py`` with the showcase mounted at
    ``/admin`` (a hit; its page) and without any mount (``/health``), interleaved
    so that a burst of load on the machine hits both: medians, and the fastest of
    each (what a quiet machine would show; robust to load on a shared one)."""
    mounted, bare = [], []
    app = "benchmarks.memory_host:app"
    for i in range(repeat):
        for rows, name, path, paths in (
            (mounted, "m", "/admin/", "/admin"),
            (bare, "b", "/health", ""),
        ):
            (work := tmp / f"same-{name}{i}").mkdir()
            rows.append(first_200(app, path, cache, work, MOUNT_PATHS=paths))
    return {
        "same_mounted": statistics.median(mounted),
        "same_bare": statistics.median(bare),
        "same_mounted_min": min(mounted),
        "same_bare_min": min(bare),
    }


_CLIENT_WORK = """
import json, sys, time
from reflex_buildd_client.mount import ReflexMount
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


def builds(tmp: Path, cache: Path) -> dict[str, float]:
    """The build rows: plain exports and reflex-buildd on a miss and a hit."""
    project = tmp / "showcase"
    shutil.copytree(SHOWCASE, project, ignore=shutil.ignore_patterns("__pycache__"))
    # Warm the JS package cache once so no row pays the first download.
    plain_export(project, tmp / "warmup-web")
    rows = {"export_cold": plain_export(project, tmp / "web-cold")}
    rows["export_warm"] = statistics.median(
        plain_export(project, tmp / "web-cold") for _ in range(REPEAT)
    )
    rows["miss_cold"] = buildd(SHOWCASE, cache)
    rows["hit"] = statistics.median(buildd(SHOWCASE, cache) for _ in range(REPEAT))
    # A one-line edit in a copy: a miss on a warm workspace.
    page = project / "showcase" / "showcase.py"
    misses = []
    for i in range(REPEAT):
        page.write_text(page.read_text() + f"\n# edit {i}\n")
        misses.append(buildd(project, cache))
    rows["miss_warm"] = statistics.median(misses)
    return rows


def startups(tmp: Path, cache: Path) -> dict[str, float]:
    """The host-start rows, on a hit (the showcase is in ``cache``)."""
    starts = []
    for i in range(REPEAT):
        (tmp / f"host{i}").mkdir()
        starts.append(host_startup(cache, tmp / f"host{i}"))
    rows = {"start_hit": statistics.median(starts)}
    # The same host with its startup waiting for the Reflex backend (the old way).
    eager = []
    for i in range(REPEAT):
        (tmp / f"eager{i}").mkdir()
        eager.append(host_startup(cache, tmp / f"eager{i}", REFLEX_BUILDD_BACKEND_START="startup"))
    rows["start_eager"] = statistics.median(eager)
    rows.update(same_host_with_and_without(cache, tmp, 3 * REPEAT))
    # The floor of any host: Python with FastAPI and uvicorn imported, nothing mounted.
    rows["floor"] = statistics.median(_import_floor() for _ in range(REPEAT))
    rows["client"] = statistics.median(client_work(cache) for _ in range(5))
    return rows


_NAMES = {
    "export_cold": "plain reflex export (cold .web)",
    "export_warm": "plain reflex export (warm .web)",
    "miss_cold": "reflex-buildd build, miss, cold workspace",
    "miss_warm": "reflex-buildd build, miss, warm workspace",
    "hit": "reflex-buildd build, hit (CLI process)",
    "start_hit": "host startup to first 200, hit",
    "start_eager": "  same, backend_start=startup",
    "same_mounted": "memory_host, showcase at /admin, hit",
    "same_bare": "  same host, no mount",
    "same_mounted_min": "memory_host, showcase at /admin, fastest",
    "same_bare_min": "  same host, no mount, fastest",
    "floor": "python importing fastapi + uvicorn (floor)",
    "client": "client's own startup work, hit",
}


def report(rows: dict[str, float]) -> None:
    width = max(len(name) for name in _NAMES.values())
    print(f"{'measurement':<{width}}  seconds")
    for key, name in _NAMES.items():
        if key in rows:
            print(f"{name:<{width}}  {rows[key]:8.3f}")
    print()
    start_hit, start_eager = rows["start_hit"], rows["start_eager"]
    if "export_warm" in rows:
        export_warm, client = rows["export_warm"], rows["client"]
        print(
            f"export (warm) / client's own work       = {export_warm / client:7.1f}x  (goal >= 50x)"
        )
        print(
            f"export-then-start / host start on a hit = "
            f"{(export_warm + start_hit) / start_hit:7.1f}x  (goal >= 8x)"
        )
        print(
            f"export-then-start / host start, backend_start=startup = "
            f"{(export_warm + start_eager) / start_eager:7.1f}x"
        )
    ratio = rows["same_mounted"] / rows["same_bare"]
    best = rows["same_mounted_min"] / rows["same_bare_min"]
    print(f"host start / same host without the mount = {ratio:7.2f}x  (goal <= 1.25x)")
    print(f"  the fastest of each                     = {best:7.2f}x")
    print(f"host start / its import floor           = {start_hit / rows['floor']:7.2f}x")
    if "export_warm" in rows:
        print(
            f"build miss (warm) / plain export (warm) = {rows['miss_warm'] / rows['export_warm']:7.2f}x"
        )
        print(
            f"build hit / plain export (warm)         = {rows['hit'] / rows['export_warm']:7.3f}x"
        )
    print(
        f"[python {sys.version.split()[0]}, {os.cpu_count()} cpus, runtime "
        f"{resolve_runtime(settings=Settings.load()).identity}, load average {os.getloadavg()[0]:.2f}]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--startup-only", action="store_true", help="only the host-start rows (builds once)"
    )
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="remove src/'s __pycache__ instead: hosts compile our modules at every start, "
        "as in a fresh checkout (what this benchmark measured before 2026-12-06)",
    )
    args = parser.parse_args()
    if args.no_bytecode:
        for cached in (REPO / "src").rglob("__pycache__"):
            shutil.rmtree(cached)
    else:
        # What `pip install` does for an installed package (see the module's docstring).
        compileall.compile_dir(REPO / "src", quiet=1)
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp_name:
        tmp = Path(tmp_name)
        cache = tmp / "cache"
        if args.startup_only:
            rows = {"miss_cold": buildd(SHOWCASE, cache)}
        else:
            rows = builds(tmp, cache)
        rows.update(startups(tmp, cache))
    report(rows)


if __name__ == "__main__":
    main()
