"""Requests per second of the static server against the alternatives (issue 5).

Four servers, each one uvicorn worker on 127.0.0.1 (access log off for all),
serve the same bytes: the showcase artifact prepared for the root prefix.

- ``ours``: what ``ReflexMount`` does for a static request (relative path,
  path check, prefix rule, prepared site lookup, ``StaticSite``).
- ``starlette``: Starlette's ``StaticFiles`` over those bytes written to disk.
- ``servestatic``: ``ServeStaticASGI`` over the same directory.
- ``memory``: a handler returning the same bytes and headers from a dict: the
  limit for any ASGI server here.

``ours`` and ``memory`` run under granian as well (``ours-granian``,
``memory-granian``: one worker, ``--interface asginl``, its access log off),
in the same interleaved rounds: granian's own limit for an ASGI handler is the
baseline there (goal >= 0.8x, as under uvicorn). ``--no-granian`` skips them.

Rows: a hashed JS chunk of ~300 KB, a small hashed chunk, the injected
``index.html`` (as ``/``), and a 304 for the big chunk. The load generator is
``wrk`` (one thread, ``--connections``), one run at a time, the servers
taking turns for a few rounds (best of the rounds counts), servers pinned to
one core and wrk to the other (``taskset``) when there are two; no
``Accept-Encoding`` is sent, so every server sends identity bytes.

Run (about 2 minutes on 2 cores; builds the showcase first if needed):
    .venv/bin/python benchmarks/bench_serve.py
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SHOWCASE = REPO / "examples" / "showcase"
sys.path.insert(0, str(REPO / "tests"))

from conftest import stop_process, wait_listening  # noqa: E402

SERVERS = ("ours", "starlette", "servestatic", "memory")
GRANIAN = ("ours-granian", "memory-granian")
# Servers on one core, wrk on the other: they do not steal each other's CPU.
_PINNED = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
_PIN_SERVER = ["taskset", "-c", "0"] if _PINNED else []
_PIN_LOAD = ["taskset", "-c", "1"] if _PINNED else []


# -- the servers (run in a child process: --serve KIND) ------------------------


def _site(cache_dir: str) -> Any:
    from reflex_buildd_client.mount import ReflexMount

    mount = ReflexMount(SHOWCASE, cache_dir=cache_dir)
    mount.open_artifact()
    return mount


def ours_app(cache_dir: str) -> Any:
    from reflex_buildd_client.serve.http import send_response
    from reflex_buildd_client.serve.prefix import is_safe_path, relative_path

    mount = _site(cache_dir)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        # ReflexMount.__call__'s static branch, without a Reflex backend.
        path = relative_path(scope)
        if not is_safe_path(path):
            raise AssertionError(path)
        await send_response(send, mount.respond(scope, path))

    return app


def memory_app(cache_dir: str) -> Any:
    mount = _site(cache_dir)
    site = mount.site("", "")
    table: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        path = scope["path"]
        found = table.get(path)
        if found is None:  # first request of a path: take our bytes once
            variant = site.resolve("" if path == "/" else path).identity
            found = table[path] = (
                variant.headers,
                variant.body,
                variant.etag,
                variant.not_modified.headers,
            )
        for name, value in scope["headers"]:
            if name == b"if-none-match" and value == found[2]:
                await send(
                    {"type": "http.response.start", "status": 304, "headers": list(found[3])}
                )
                await send({"type": "http.response.body", "body": b""})
                return
        await send({"type": "http.response.start", "status": 200, "headers": list(found[0])})
        await send({"type": "http.response.body", "body": found[1]})

    return app


def starlette_app(docroot: str) -> Any:
    from starlette.staticfiles import StaticFiles

    return StaticFiles(directory=docroot, html=True)


def servestatic_app(docroot: str) -> Any:
    from servestatic import ServeStaticASGI

    async def not_found(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return ServeStaticASGI(not_found, root=docroot, index_file=True)


def make_app(kind: str, cache_dir: str, docroot: str) -> Any:
    return {
        "ours": lambda: ours_app(cache_dir),
        "memory": lambda: memory_app(cache_dir),
        "starlette": lambda: starlette_app(docroot),
        "servestatic": lambda: servestatic_app(docroot),
    }[kind]()


def granian_factory() -> Any:
    """granian's target (in its worker process): the app named by the environment."""
    env = os.environ
    return make_app(env["BENCH_SERVE_KIND"], env["BENCH_SERVE_CACHE"], env["BENCH_SERVE_DOCROOT"])


def serve(kind: str, port: int, cache_dir: str, docroot: str) -> None:
    if kind.endswith("-granian"):
        from granian import Granian
        from granian.constants import Interfaces
        from granian.log import LogLevels

        # The worker process imports the target and inherits these.
        os.environ["BENCH_SERVE_KIND"] = kind.removesuffix("-granian")
        os.environ["BENCH_SERVE_CACHE"], os.environ["BENCH_SERVE_DOCROOT"] = cache_dir, docroot
        Granian(
            "bench_serve:granian_factory",
            factory=True,
            address="127.0.0.1",
            port=port,
            interface=Interfaces.ASGINL,  # no lifespan, as uvicorn's lifespan="off" below
            workers=1,
            log_level=LogLevels.warning,
            working_dir=Path(__file__).parent,
        ).serve()
        return
    import uvicorn

    uvicorn.run(
        make_app(kind, cache_dir, docroot),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


# -- the driver ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env() -> dict[str, str]:
    env = dict(os.environ)
    bins = [str(Path(sys.executable).parent), str(REPO / ".tools" / "node_modules" / ".bin")]
    env["PATH"] = os.pathsep.join([*bins, env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO), env.get("PYTHONPATH", "")])
    env.setdefault("REFLEX_TELEMETRY_ENABLED", "false")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def build(cache_dir: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "reflex_buildd",
            "build",
            str(SHOWCASE),
            "--json",
            "--cache-dir",
            str(cache_dir),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=REPO,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"build failed:\n{result.stdout}\n{result.stderr}")


def write_docroot(cache_dir: Path, docroot: Path) -> dict[str, str]:
    """Write what ``ours`` serves at the root prefix to disk; return the row paths."""
    mount = _site(str(cache_dir))
    site = mount.site("", "")
    assert mount._files is not None
    for url in mount._files.raw:
        target = docroot / url.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(site.resolve(url).identity.body)
    scripts = sorted(
        (len(site.resolve(u).identity.body), u)
        for u in mount._files.raw
        if u.startswith("/assets/") and u.endswith(".js")
    )
    big = next(u for size, u in reversed(scripts) if size <= 600_000)
    small = next(u for size, u in scripts if size >= 2_000)
    return {"big": big, "small": small, "index": "/"}


@contextlib.contextmanager
def server(kind: str, cache_dir: Path, docroot: Path, tree: Path | None = None) -> Iterator[str]:
    """A server process; ``tree``: another checkout's ``ours`` (its bench and its code)."""
    port = _free_port()
    env = _env()
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(tree / "src"), str(tree), env["PYTHONPATH"]])
    process = subprocess.Popen(
        [
            *_PIN_SERVER,
            sys.executable,
            str(tree / "benchmarks" / "bench_serve.py") if tree is not None else __file__,
            "--serve",
            "ours" if tree is not None else kind,
            "--port",
            str(port),
            "--cache-dir",
            str(cache_dir),
            "--docroot",
            str(docroot),
        ],
        env=env,
        cwd=tree or REPO,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_listening(port, process, timeout=60, what=f"{kind} server")
        yield url
    finally:
        stop_process(process)


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, b""


def wrk(url: str, duration: int, connections: int, headers: dict[str, str]) -> float:
    args = [*_PIN_LOAD, "wrk", "-t1", f"-c{connections}", f"-d{duration}s"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run(
        [*args, url], capture_output=True, text=True, timeout=duration + 30, check=True
    ).stdout
    if "Non-2xx or 3xx" in out:
        raise SystemExit(f"errors from {url}:\n{out}")
    match = re.search(r"Requests/sec:\s*([\d.]+)", out)
    if match is None:
        raise SystemExit(f"cannot read wrk's output:\n{out}")
    return float(match.group(1))


def python_cpu(cache_dir: Path, docroot: Path, count: int = 20_000) -> dict[str, dict[str, float]]:
    """Microseconds of this thread's CPU per request of ``ours`` and ``memory`` (no server).

    Each handler's coroutine is driven by hand with a ``send`` that does
    nothing, so what is measured is the handler's Python alone: robust to
    other load on the machine, unlike requests per second. ``memory`` is the
    same-run baseline. ``ours+metrics`` is ``ours`` in a host that counts
    (``metrics_app()``: prometheus_client's multi-process mode, each response
    counted by status and encoding), where the tree has metrics.
    """
    import gc
    import time

    rows = write_docroot(cache_dir, docroot)
    etag = _site(str(cache_dir)).site("", "").resolve(rows["big"]).identity.etag
    ours = ours_app(str(cache_dir))
    apps = {"ours": ours, "memory": memory_app(str(cache_dir))}
    counting = _counting(docroot.parent / "metrics")
    if counting is not None:
        apps["ours+metrics"] = ours

    async def send(message: Any) -> None:
        pass

    def run(app: Any, scope: dict[str, Any]) -> None:
        coroutine = app(scope, None, send)
        try:
            coroutine.send(None)
        except StopIteration:
            pass

    results: dict[str, dict[str, float]] = {kind: {} for kind in apps}
    for row, path in {**rows, "304": rows["big"]}.items():
        headers = [(b"host", b"127.0.0.1"), (b"user-agent", b"wrk")]
        if row == "304":
            headers.append((b"if-none-match", etag))
        scope = {
            "type": "http",
            "method": "GET",
            "root_path": "",
            "path": path,
            "client": ("127.0.0.1", 40000),
            "headers": headers,
        }
        for app in apps.values():
            run(app, scope)
        gc.disable()
        try:
            for _ in range(7):  # interleaved rounds; the least counts
                for kind, app in apps.items():
                    _count_served(counting if kind == "ours+metrics" else None)
                    started = time.thread_time_ns()
                    for _ in range(count):
                        run(app, scope)
                    micros = (time.thread_time_ns() - started) / count / 1000
                    results[kind][row] = min(results[kind].get(row, float("inf")), micros)
        finally:
            gc.enable()
    return results


def _counting(directory: Path) -> Any:
    """Start counting as a host with ``metrics_app()`` does; None for a tree without metrics."""
    try:
        from reflex_buildd_client.exposition import metrics_app
        from reflex_buildd_client.serve import http
        from reflex_buildd_client.settings import Settings
    except ImportError:
        return None
    metrics_app(
        Settings.load(
            cache_dir=str(directory), environ={"REFLEX_BUILDD_METRICS_DIR": str(directory)}
        )
    )
    hook = http.count_served
    http.count_served = None
    return hook


def _count_served(hook: Any) -> None:
    with contextlib.suppress(ImportError):
        from reflex_buildd_client.serve import http

        http.count_served = hook


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--serve", choices=SERVERS + GRANIAN, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--docroot", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help="cache to build into / read from (default: a temp dir)")
    parser.add_argument("--duration", type=int, default=1, help="seconds per measurement (whole)")
    parser.add_argument(
        "--rounds", type=int, default=5, help="measurements per cell (the best counts)"
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        help="also serve with another checkout's ours (e.g. a worktree of main), same run",
    )
    parser.add_argument(
        "--no-granian", action="store_true", help="skip ours and memory under granian"
    )
    parser.add_argument(
        "--python-only",
        action="store_true",
        help="only the CPU per request of ours' Python, in process (no wrk, robust to load)",
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.cache_dir, args.docroot)
        return
    if args.python_only:
        with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
            cache_dir = Path(args.cache_dir) if args.cache_dir else Path(tmp) / "cache"
            build(cache_dir)
            cpu = python_cpu(cache_dir, Path(tmp) / "docroot")
        print("µs of Python per request, in process:   ours   memory   ours/memory")
        for row, micros in cpu["ours"].items():
            memory = cpu["memory"][row]
            print(f"  {row:6} {'':30} {micros:6.2f}   {memory:6.2f}   {micros / memory:10.2f}x")
        if "ours+metrics" in cpu:
            print("with metrics on (metrics_app(), multi-process):  ours+metrics   /ours")
            for row, micros in cpu["ours+metrics"].items():
                print(f"  {row:6} {'':30} {micros:12.2f}   {micros / cpu['ours'][row]:6.2f}x")
        print(json.dumps({"python_us_per_request": cpu}))
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found (Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        cache_dir = Path(args.cache_dir) if args.cache_dir else Path(tmp) / "cache"
        build(cache_dir)
        docroot = Path(tmp) / "docroot"
        rows = write_docroot(cache_dir, docroot)
        kinds: tuple[str, ...] = SERVERS if args.no_granian else SERVERS + GRANIAN
        if args.baseline_tree:
            kinds += ("baseline",)
        results: dict[str, dict[str, float]] = {kind: {} for kind in kinds}
        reference: dict[str, bytes] = {}
        plans: dict[str, dict[str, tuple[str, dict[str, str]]]] = {}
        with contextlib.ExitStack() as stack:
            urls = {
                kind: stack.enter_context(
                    server(
                        kind, cache_dir, docroot, args.baseline_tree if kind == "baseline" else None
                    )
                )
                for kind in kinds
            }
            for kind, url in urls.items():
                for row, path in rows.items():
                    status, _, body = fetch(url + path)
                    assert status == 200, (kind, path, status)
                    # Every server sends the same bytes.
                    assert reference.setdefault(row, body) == body, (kind, row)
                _, headers, _ = fetch(url + rows["big"])
                etag = headers.get("etag", "")
                status, _, _ = fetch(url + rows["big"], {"If-None-Match": etag})
                assert status == 304, (kind, status, etag)
                plans[kind] = {
                    **{row: (path, {}) for row, path in rows.items()},
                    "304": (rows["big"], {"If-None-Match": etag}),
                }
                for path, extra in plans[kind].values():
                    wrk(url + path, 1, args.connections, extra)  # warm up
            # Servers take turns, row by row, for several rounds; the best of
            # the rounds counts, so a burst of other load on the machine
            # lowers no single server's number alone.
            for round_ in range(args.rounds):
                for row in ("big", "small", "index", "304"):
                    for kind in kinds:
                        path, extra = plans[kind][row]
                        rate = wrk(urls[kind] + path, args.duration, args.connections, extra)
                        results[kind][row] = max(rate, results[kind].get(row, 0.0))
                        print(f"round {round_ + 1} {kind:12} {row:6} {rate:9.0f} req/s", flush=True)
        sizes = {row: len(body) for row, body in reference.items()}
        print()
        print(
            f"rows: big = {rows['big']} ({sizes['big']} B), small = {rows['small']} ({sizes['small']} B), "
            f"index = / ({sizes['index']} B), 304 = big with If-None-Match"
        )
        print(
            f"wrk -t1 -c{args.connections} -d{args.duration}s, best of {args.rounds} interleaved rounds, "
            "one uvicorn worker each, 127.0.0.1"
        )
        header = (
            f"{'row':6} "
            + " ".join(f"{k:>12}" for k in SERVERS)
            + "   ours/starlette  ours/servestatic  ours/memory"
        )
        print(header)
        ratios: dict[str, dict[str, float]] = {}
        for row in ("big", "small", "index", "304"):
            r = {k: results[k][row] for k in SERVERS}
            ratios[row] = {
                "starlette": r["ours"] / r["starlette"],
                "servestatic": r["ours"] / r["servestatic"],
                "memory": r["ours"] / r["memory"],
            }
            print(
                f"{row:6} "
                + " ".join(f"{r[k]:12.0f}" for k in SERVERS)
                + f"   {ratios[row]['starlette']:14.2f}x {ratios[row]['servestatic']:16.2f}x {ratios[row]['memory']:11.2f}x"
            )
        if not args.no_granian:
            print("under granian (one worker, --interface asginl), same rounds:")
            for row in ("big", "small", "index", "304"):
                ours, memory = results["ours-granian"][row], results["memory-granian"][row]
                ratios[row]["granian_memory"] = ours / memory
                ratios[row]["granian_vs_uvicorn"] = ours / results["ours"][row]
                print(
                    f"{row:6} ours {ours:9.0f}  memory {memory:9.0f}  ours/memory "
                    f"{ours / memory:5.2f}x  (ours: {ours / results['ours'][row]:4.2f}x uvicorn's)"
                )
        if args.baseline_tree:
            print(f"baseline = ours of {args.baseline_tree}")
            for row in ("big", "small", "index", "304"):
                ratios[row]["baseline"] = results["ours"][row] / results["baseline"][row]
                print(
                    f"{row:6} ours {results['ours'][row]:9.0f}  baseline "
                    f"{results['baseline'][row]:9.0f}  ours/baseline {ratios[row]['baseline']:5.2f}x"
                )
        print(json.dumps({"requests_per_second": results, "ratios": ratios}))


if __name__ == "__main__":
    main()
