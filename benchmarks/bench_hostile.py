"""CPU per hostile request against CPU per normal request, in the same run (issue 11).

A hostile request is a browser's request for a small hashed script plus one
hostile header value (the issue's ``Range`` values, and the like for every
other header the static side parses, each about 15 KB: what uvicorn's h11
accepts in a request head); a normal request is the same request without it.

Two measurements, each as a ratio to the normal request of the same run:

- ``app``: the CPU time of what ``ReflexMount`` runs for a static request
  (path check, prefix rule, prepared site, decision), in this process, its
  memos cleared before every call (a hostile client varies its values so that
  no memo helps). This is the code the project controls.
- ``server``: the CPU time of a whole uvicorn process (one worker, the static
  branch of ``ReflexMount`` as in ``bench_serve.py``, 127.0.0.1 trusted as a
  proxy so forwarded headers are parsed), over one keep-alive connection, read
  from ``/proc``. This includes uvicorn and h11 reading the bigger request.

Run (about a minute; builds the showcase first if needed):
    .venv/bin/python benchmarks/bench_hostile.py
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_serve import (  # noqa: E402
    _PIN_SERVER,
    SHOWCASE,
    _env,
    _free_port,
    build,
    stop_process,
    wait_listening,
)

BROWSER = {"Accept-Encoding": "gzip, deflate, br, zstd", "Accept": "*/*"}
HOSTILE: dict[str, tuple[str, str]] = {
    "range: -<4400 nines>": ("Range", "bytes=-" + "9" * 4400),
    "range: 0-<15500 spaces>x": ("Range", "bytes=0-" + " " * 15500 + "x"),
    "range: 1500 ranges": ("Range", "bytes=" + "0-0," * 3500),
    "if-none-match: 15000 commas": ("If-None-Match", "," * 15000),
    "if-range: 15 KB tag": ("If-Range", '"' + "a" * 15000 + '"'),
    "accept-encoding: 7000 codings": ("Accept-Encoding", "a," * 7000),
    "x-forwarded-prefix: 15 KB": ("X-Forwarded-Prefix", "/a" * 7500),
    "x-forwarded-host: 15 KB": ("X-Forwarded-Host", "a" * 15000),
    "x-forwarded-for: 1800 hops": ("X-Forwarded-For", "1.2.3.4," * 1800),
}


def _small_script(mount: Any) -> str:
    site = mount.site("", "")
    sizes = sorted((len(r.identity.body), url) for url, r in site.resources.items())
    return next(url for size, url in sizes if url.startswith("/assets/") and size >= 2000)


# -- app: in this process ------------------------------------------------------


def app_cpu(cache_dir: Path, requests: int) -> dict[str, float]:
    """Seconds of this thread's CPU per request, for normal and each hostile kind."""
    import gc

    from reflex_buildd_client.mount import ReflexMount
    from reflex_buildd_client.serve import headers, prefix
    from reflex_buildd_client.serve.prefix import is_safe_path, relative_path

    mount = ReflexMount(SHOWCASE, cache_dir=cache_dir, trusted_proxies="127.0.0.1")
    mount.open_artifact()
    path = _small_script(mount)

    def scope(extra: dict[str, str]) -> dict[str, Any]:
        return {
            "type": "http",
            "method": "GET",
            "scheme": "http",
            "root_path": "",
            "path": path,
            "client": ("127.0.0.1", 40000),
            "headers": [
                (k.lower().encode(), v.encode("latin-1")) for k, v in {**BROWSER, **extra}.items()
            ],
        }

    def one(found: dict[str, Any]) -> int:
        headers._preferences.cache_clear()
        prefix._checked_root.cache_clear()
        started = time.thread_time_ns()
        rel = relative_path(found)
        if is_safe_path(rel):
            mount.respond(found, rel)
        return time.thread_time_ns() - started

    kinds = {"normal": scope({}), **{k: scope({n: v}) for k, (n, v) in HOSTILE.items()}}
    for found in kinds.values():  # prepare the site and its variants
        one(found)
    best: dict[str, float] = {}
    gc.disable()
    try:
        for _ in range(3):  # rounds, interleaved; the least counts
            for kind, found in kinds.items():
                total = sum(one(found) for _ in range(requests))
                best[kind] = min(best.get(kind, float("inf")), total / requests / 1e9)
    finally:
        gc.enable()
    return best


# -- server: a uvicorn process --------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def ours_server(cache_dir: Path) -> Iterator[tuple[int, int]]:
    port = _free_port()
    env = {**_env(), "REFLEX_BUILDD_TRUSTED_PROXIES": "127.0.0.1"}
    process = subprocess.Popen(
        [
            *_PIN_SERVER,
            sys.executable,
            str(HERE / "bench_serve.py"),
            "--serve",
            "ours",
            "--port",
            str(port),
            "--cache-dir",
            str(cache_dir),
            "--docroot",
            str(cache_dir),
        ],
        env=env,
    )
    try:
        wait_listening(port, process, timeout=60, what="ours")
        yield port, process.pid
    finally:
        stop_process(process)


def server_cpu(cache_dir: Path, requests: int) -> dict[str, float]:
    """Seconds of the server process's CPU per request, for normal and each hostile kind."""
    from reflex_buildd_client.mount import ReflexMount

    mount = ReflexMount(SHOWCASE, cache_dir=cache_dir)
    mount.open_artifact()
    path = _small_script(mount)
    kinds = {"normal": dict(BROWSER), **{k: {**BROWSER, n: v} for k, (n, v) in HOSTILE.items()}}
    best: dict[str, float] = {}
    with ours_server(cache_dir) as (port, pid):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

        def run(headers: dict[str, str], count: int) -> None:
            for _ in range(count):
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                response.read()
                assert response.status in (200, 206, 304, 400, 404, 416), response.status

        for headers in kinds.values():
            run(headers, 50)  # warm up: the site, the variants
        for _ in range(3):
            for kind, headers in kinds.items():
                before = _cpu_seconds(pid)
                run(headers, requests)
                spent = _cpu_seconds(pid) - before
                best[kind] = min(best.get(kind, float("inf")), spent / requests)
        connection.close()
    return best


def _report(title: str, cpu: dict[str, float]) -> dict[str, float]:
    normal = cpu["normal"]
    print(f"\n{title}: CPU per request, normal = {normal * 1e6:.1f} µs")
    ratios = {}
    for kind in HOSTILE:
        ratios[kind] = cpu[kind] / normal
        print(f"  {kind:32} {cpu[kind] * 1e6:8.1f} µs   {ratios[kind]:5.2f}x normal")
    print(f"  {'worst':32} {'':8}      {max(ratios.values()):5.2f}x normal (goal: at most 2x)")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cache-dir", help="cache to build into / read from (default: a temp dir)")
    parser.add_argument("--requests", type=int, default=2000, help="requests per kind and round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        cache_dir = Path(args.cache_dir) if args.cache_dir else Path(tmp) / "cache"
        build(cache_dir)
        app = _report("app (in process, memos cleared)", app_cpu(cache_dir, args.requests))
        server = _report(
            "server (uvicorn process, keep-alive)", server_cpu(cache_dir, args.requests)
        )
        print(json.dumps({"app": app, "server": server}))


if __name__ == "__main__":
    main()
