"""In-process vs process mode on the same app: event round-trip, memory, startup.

One FastAPI host (``examples/hosts/fastapi_host.py``) mounts the showcase at
``/admin``, once with ``REFLEX_BUILDD_BACKEND=inprocess`` and once with
``process``, in turns (several rounds, the median of each counts), on the
same artifact. Measured in headless Chromium (the real frontend, the real
socket.io client):

- event round-trip: a click on ``Increment`` until the count shows the new
  value in the DOM (the event goes over the websocket to the backend, the
  state delta comes back), median of ``--clicks`` clicks after a warm-up;
- memory: RSS of the host plus its children (the backend child in process
  mode) once the page has run its events;
- startup: host process start to the first event round-trip (page load,
  websocket, one click answered);
- a backend HTTP round-trip without the browser: ``GET /admin/ping`` over one
  keep-alive connection, median of 300 (the forwarding's own cost shows here,
  where the click's ~60 ms of browser work cannot hide it).

The goal is process mode at most 1.25x the in-process round-trip.

``--http`` measures instead what a browser's frames hide (issue 21), on the
rows fixture app (``tests/fixtures/rows_app``, an ``api_transformer`` app),
in-process against process mode, in turns, in the same run:

- HTTP throughput: ``GET /admin/ping`` (Reflex's own route) and
  ``GET /admin/env`` (a FastAPI route of the app's ``api_transformer``) from
  ``--connections`` closed-loop keep-alive clients for ``--seconds`` each;
- CPU per request of the host process and of the backend child, read from
  ``/proc`` over the same window: what forwarding costs the host;
- event round trip over a raw socket.io client (``eventclient.py``): one
  client sending ``--events`` events one after the other, from send to the
  final state update (p50 and p99, in milliseconds, not frames).

Goals: process mode's req/s at least 0.7x in-process; the host's CPU per
forwarded request at most 0.4 ms above what the child spends on it.

Run (a few minutes; builds the fixture app into a temporary cache first):
    .venv/bin/python benchmarks/bench_backend.py --http

``--load`` measures throughput instead (issue 21): 50 closed-loop socket.io
clients (``tests/sioclient.py``, the frontend's protocol without a browser)
per setup send the showcase's ``increment`` as fast as answers come back,
against a real Redis holding the state, for 1, 2 and ``auto`` backend
processes in process mode and in-process with the same number of uvicorn
workers. All hosts run at once; windows of a few seconds per setup rotate over
rounds, so each setup sees the same machine within seconds of the others (on
a shared machine others' load comes and goes): events per second (median of
the rounds) and the p50/p99 of one event's round-trip. The goal: 2 backend
processes sustain at least 1.25x the events of one (the median of the rounds'
paired ratios).

Run (about four minutes; builds the showcase into a temporary cache first):
    .venv/bin/python benchmarks/bench_backend.py --load
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from conftest import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    SHOWCASE,
    Host,
    build_fixture_app,
    run_cli,
    spawn_host,
    stop_process,
    wait_ready,
)

MODES = ("inprocess", "process")
LOAD_CLIENTS = 50


def rss_mb(pid: int) -> float:
    """RSS of ``pid`` and of its children (the backend child in process mode)."""
    total = 0.0
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(c) for c in (task / "children").read_text().split()]
    for each in pids:
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


def ping_median(url: str, count: int = 300) -> float:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    times = []
    try:
        for _ in range(count):
            t0 = time.perf_counter()
            conn.request("GET", "/admin/ping")
            response = conn.getresponse()
            response.read()
            times.append(time.perf_counter() - t0)
            assert response.status == 200, response.status
    finally:
        conn.close()
    return statistics.median(times)


def measure(browser: Any, mode: str, cache: Path, log_dir: Path, clicks: int) -> dict[str, float]:
    from playwright.sync_api import expect

    started = time.perf_counter()
    host = spawn_host(
        "examples.hosts.fastapi_host:app",
        cache_dir=cache,
        log_dir=log_dir,
        REFLEX_BUILDD_BACKEND=mode,
        REFLEX_BUILDD_POLICY="fail",
        REFLEX_UPLOADED_FILES_DIR=str(log_dir / "uploads"),
        REFLEX_STATES_WORKDIR=str(log_dir / "states"),
    )
    context = browser.new_context()
    try:
        wait_ready(host)
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(host.url + "/admin/")
        count = page.locator("#count")
        expect(count).to_have_text("0", timeout=30_000)
        button = page.locator("#increment")
        button.click()
        expect(count).to_have_text("1", timeout=30_000)
        startup = time.perf_counter() - started
        for n in range(2, 7):  # warm-up
            button.click()
            expect(count).to_have_text(str(n), timeout=30_000)
        times = []
        for n in range(7, 7 + clicks):
            t0 = time.perf_counter()
            button.click()
            page.wait_for_function(
                "(n) => document.querySelector('#count').textContent === String(n)",
                arg=n,
                polling="raf",
            )
            times.append(time.perf_counter() - t0)
        rss = rss_mb(host.process.pid)
        return {
            "rtt": statistics.median(times),
            "rss": rss,
            "startup": startup,
            "ping": ping_median(host.url),
        }
    finally:
        context.close()
        stop_process(host.process)


# -- --http: throughput, CPU per request, raw event round trip ------------------

HTTP_ROUTES = ("/ping", "/env")
ROWS_EVENT = "reflex___state____state.rows_app___rows_app____rows_state.read_words"
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


async def _http_client(address: tuple[str, int], request: bytes, stop: asyncio.Event) -> int:
    reader, writer = await asyncio.open_connection(*address)
    done = 0
    try:
        while not stop.is_set():
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"unexpected answer: {head[:200]!r}")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            done += 1
    finally:
        writer.close()
    return done


async def http_load(url: str, path: str, connections: int, seconds: float) -> int:
    """Requests answered by ``connections`` closed-loop clients in ``seconds``."""
    name, port = url.removeprefix("http://").split(":")
    request = f"GET {path} HTTP/1.1\r\nHost: {name}:{port}\r\n\r\n".encode()
    stop = asyncio.Event()
    clients = [
        asyncio.ensure_future(_http_client((name, int(port)), request, stop))
        for _ in range(connections)
    ]
    await asyncio.sleep(seconds)
    stop.set()
    return sum(await asyncio.gather(*clients))


async def event_round_trips(base: str, count: int) -> list[float]:
    """Seconds per event of one raw socket.io client, one event after the other."""
    from eventclient import EventClient

    client = EventClient(base)
    await client.connect()
    try:
        for _ in range(20):  # warm-up: the state is created, caches fill
            await client.event(ROWS_EVENT)
        return [await client.event(ROWS_EVENT) for _ in range(count)]
    finally:
        await client.close()


def http_measure(
    mode: str, project: Path, cache: Path, log_dir: Path, args: argparse.Namespace
) -> dict[str, float]:
    """One host in ``mode``: req/s and CPU per request of each route, event round trips."""
    host = spawn_host(
        "tests.hosts.project_host:app",
        cache_dir=cache,
        log_dir=log_dir,
        MOUNT_PROJECT=str(project),
        REFLEX_BUILDD_BACKEND=mode,
        REFLEX_BUILDD_POLICY="fail",
    )
    result: dict[str, float] = {}
    try:
        wait_ready(host, "/admin/ping")
        for route in HTTP_ROUTES:
            path = "/admin" + route
            asyncio.run(http_load(host.url, path, args.connections, 1.0))  # warm-up
            pids = [host.process.pid, *children_of(host.process.pid)]
            before = [cpu_seconds(p) for p in pids]
            started = time.perf_counter()
            done = asyncio.run(http_load(host.url, path, args.connections, args.seconds))
            elapsed = time.perf_counter() - started
            spent = [cpu_seconds(p) - b for p, b in zip(pids, before, strict=True)]
            result[f"{route} rps"] = done / elapsed
            result[f"{route} host"] = spent[0] / done * 1000
            result[f"{route} child"] = sum(spent[1:]) / done * 1000
        rtts = sorted(asyncio.run(event_round_trips("ws" + host.url[4:] + "/admin", args.events)))
        result["event p50"] = statistics.median(rtts) * 1000
        result["event p99"] = rtts[int(len(rtts) * 0.99) - 1] * 1000
    finally:
        stop_process(host.process)
    return result


def http_main(args: argparse.Namespace) -> None:
    """``--http``: in-process against process mode on the rows fixture app."""
    with tempfile.TemporaryDirectory(prefix="bench-backend-http-") as tmp:
        cache = Path(tmp) / "cache"
        app = build_fixture_app("rows_app", cache, Path(tmp))
        runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
        for round_ in range(args.rounds):
            for mode in MODES:
                log_dir = Path(tmp) / f"{mode}-{round_}"
                log_dir.mkdir()
                runs[mode].append(http_measure(mode, app.project, cache, log_dir, args))
    keys = list(runs["inprocess"][0])
    med = {m: {k: statistics.median(r[k] for r in runs[m]) for k in keys} for m in MODES}
    print(
        f"rows fixture app, {args.connections} connections, {args.seconds:g}s per route, "
        f"median of {args.rounds} rounds"
    )
    print(f"{'measurement':40} {'inprocess':>10} {'process':>10} {'ratio':>7}")
    labels = {"rps": "req/s", "host": "host CPU per request (ms)", "child": "child CPU (ms)"}
    for key in keys:
        route, _, kind = key.partition(" ")
        label = f"GET {route} {labels[kind]}" if route.startswith("/") else f"{key} (ms)"
        a, b = med["inprocess"][key], med["process"][key]
        ratio = f"{b / a:7.2f}" if a else ""
        print(f"{label:40} {a:10.3f} {b:10.3f} {ratio}")
    print()
    for route in HTTP_ROUTES:
        p, i = med["process"], med["inprocess"]
        print(
            f"GET {route}: process / inprocess req/s = {p[f'{route} rps'] / i[f'{route} rps']:.2f}x "
            f"(goal >= 0.70x); host CPU above the child's = "
            f"{p[f'{route} host'] - p[f'{route} child']:+.3f} ms (goal <= +0.4); "
            f"forwarding's CPU (host + child - inprocess) = "
            f"{p[f'{route} host'] + p[f'{route} child'] - i[f'{route} host']:+.3f} ms"
        )


# -- load mode (--load) ------------------------------------------------------


async def _window(socks: list[Any], warmup: float, seconds: float) -> list[float]:
    """Every session sends the next event when the last is answered (a closed loop);
    the latencies of the events that started in the measured window."""
    import asyncio

    start = time.perf_counter() + warmup
    stop = start + seconds
    latencies: list[float] = []

    async def client(sock: Any) -> None:
        while (now := time.perf_counter()) < stop:
            await sock.count()
            if now >= start:
                latencies.append(time.perf_counter() - now)

    await asyncio.wait_for(asyncio.gather(*(client(s) for s in socks)), warmup + seconds + 60)
    return latencies


def _spawn_load_host(mode: str, workers: str, cache: Path, log_dir: Path, redis_url: str) -> Host:
    host_workers = workers if mode == "inprocess" else "1"
    if host_workers == "auto":
        host_workers = str(len(os.sched_getaffinity(0)))
    log_dir.mkdir(mode=0o700)
    return spawn_host(
        "examples.hosts.fastapi_host:app",
        cache_dir=cache,
        log_dir=log_dir,
        extra_args=("--workers", host_workers, "--log-level", "warning"),
        REFLEX_BUILDD_BACKEND=mode,
        REFLEX_BUILDD_POLICY="fail",
        REFLEX_REDIS_URL=redis_url,
        REFLEX_BUILDD_BACKEND_WORKERS=workers if mode == "process" else "1",
        XDG_RUNTIME_DIR=str(log_dir),
    )


async def _load_rounds(
    bases: dict[tuple[str, str], str], rounds: int, seconds: float
) -> dict[tuple[str, str], list[list[float]]]:
    """Each host gets its 50 sessions once; then, round after round, one window per
    host in a rotating order, so every setup sees the same machine (others' load
    comes and goes) within seconds of the others."""
    from sioclient import ReflexSocket

    socks = {c: [await ReflexSocket.open(b) for _ in range(LOAD_CLIENTS)] for c, b in bases.items()}
    configs = list(bases)
    out: dict[tuple[str, str], list[list[float]]] = {c: [] for c in configs}
    try:
        for round_ in range(rounds):
            shift = round_ % len(configs)
            for config in configs[shift:] + configs[:shift]:
                out[config].append(await _window(socks[config], 1.0, seconds))
    finally:
        for each in socks.values():
            for sock in each:
                with contextlib.suppress(Exception):
                    await sock.close()
    return out


def _print_load(runs: dict[tuple[str, str], list[list[float]]], seconds: float, cores: int) -> None:
    print(
        f"{LOAD_CLIENTS} closed-loop socket.io clients, Redis state, {len(runs[('process', '1')])} "
        f"rounds x {seconds:.0f} s per setup, interleaved; {cores} cores, auto = {cores}"
    )
    print(f"{'setup':48} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs in-process':>14}")
    rate = {c: statistics.median(len(w) / seconds for w in ws) for c, ws in runs.items()}
    for (mode, n), windows in runs.items():
        lat = sorted(x for w in windows for x in w)
        label = (
            f"process, {n} backend process(es), 1 host worker"
            if mode == "process"
            else f"in-process, {n} uvicorn worker(s)"
        )
        vs = rate[(mode, n)] / rate[("inprocess", n)]
        p50 = lat[len(lat) // 2] * 1000
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        print(f"{label:48} {rate[(mode, n)]:9.0f} {p50:8.1f} {p99:8.1f} {vs:13.2f}x")
    # Paired: the two windows of a round ran seconds apart, on the same machine.
    pairs = [
        len(two) / max(1, len(one))
        for one, two in zip(runs[("process", "1")], runs[("process", "2")], strict=True)
    ]
    print(
        f"\nprocess mode, 2 backend processes / 1 = {statistics.median(pairs):4.2f}x "
        f"(median of the rounds' ratios: {', '.join(f'{p:.2f}' for p in pairs)}; goal >= 1.25x)"
    )
    if cores == 2:
        print("auto = 2 on this machine: the 2 rows are the auto rows")


def main_load(args: argparse.Namespace) -> None:
    """``--load``: throughput of 1, 2 and auto backend processes against in-process."""
    import asyncio

    from redisserver import redis_server

    cores = len(os.sched_getaffinity(0))
    counts = ["1", "2"] + (["auto"] if cores not in (1, 2) else [])
    configs = [(mode, n) for n in counts for mode in MODES]
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp, redis_server() as redis:
        cache = Path(tmp) / "cache"
        result = run_cli("build", str(SHOWCASE), cache_dir=cache)
        if result.returncode != 0:
            raise SystemExit(result.stdout + result.stderr)
        hosts = {
            (m, n): _spawn_load_host(m, n, cache, Path(tmp) / f"{m}-{n}", redis.url)
            for m, n in configs
        }
        try:
            for host in hosts.values():
                wait_ready(host, "/admin/ping", timeout=180)
            bases = {c: h.url.replace("http", "ws") + "/admin" for c, h in hosts.items()}
            runs = asyncio.run(_load_rounds(bases, args.rounds, args.seconds))
        finally:
            for host in hosts.values():
                stop_process(host.process)
    _print_load(runs, args.seconds, cores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="--load: default 8")
    parser.add_argument("--clicks", type=int, default=30)
    parser.add_argument(
        "--http", action="store_true", help="HTTP req/s, CPU per request, raw event round trip"
    )
    parser.add_argument("--connections", type=int, default=50, help="--http: clients")
    parser.add_argument(
        "--seconds", type=float, default=None, help="--http: per route (8); --load: per window (5)"
    )
    parser.add_argument("--events", type=int, default=500, help="--http: events timed")
    parser.add_argument(
        "--load", action="store_true", help="events/s of 1, 2 and auto backend processes"
    )
    args = parser.parse_args()
    if args.load:
        args.seconds = args.seconds or 5.0
        if "--rounds" not in sys.argv:
            args.rounds = 8
        main_load(args)
    elif args.http:
        args.seconds = args.seconds or 8.0
        http_main(args)
    else:
        browser_main(args)


def browser_main(args: argparse.Namespace) -> None:
    """The default: the click round-trip in Chromium, memory, startup, ping."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench-backend-") as tmp:
        cache = Path(tmp) / "cache"
        result = run_cli("build", str(SHOWCASE), cache_dir=cache)
        if result.returncode != 0:
            raise SystemExit(result.stdout + result.stderr)
        runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for round_ in range(args.rounds):
                    for mode in MODES:
                        log_dir = Path(tmp) / f"{mode}-{round_}"
                        log_dir.mkdir()
                        runs[mode].append(measure(browser, mode, cache, log_dir, args.clicks))
            finally:
                browser.close()

    med = {
        mode: {
            k: statistics.median(r[k] for r in runs[mode])
            for k in ("rtt", "rss", "startup", "ping")
        }
        for mode in MODES
    }
    print(f"{'measurement (median of rounds)':36} {'inprocess':>10} {'process':>10}")
    print(
        f"{'event round-trip, click to DOM (ms)':36} "
        f"{med['inprocess']['rtt'] * 1000:10.1f} {med['process']['rtt'] * 1000:10.1f}"
    )
    print(
        f"{'GET /admin/ping round-trip (ms)':36} "
        f"{med['inprocess']['ping'] * 1000:10.2f} {med['process']['ping'] * 1000:10.2f}"
    )
    print(
        f"{'RSS, host + children (MB)':36} "
        f"{med['inprocess']['rss']:10.0f} {med['process']['rss']:10.0f}"
    )
    print(
        f"{'host start to first round-trip (s)':36} "
        f"{med['inprocess']['startup']:10.2f} {med['process']['startup']:10.2f}"
    )
    print()
    ratio = med["process"]["rtt"] / med["inprocess"]["rtt"]
    print(f"round-trip process / inprocess = {ratio:5.2f}x  (goal <= 1.25x)")
    ping = med["process"]["ping"] / med["inprocess"]["ping"]
    print(f"ping       process / inprocess = {ping:5.2f}x")
    print(
        f"memory     process / inprocess = {med['process']['rss'] / med['inprocess']['rss']:5.2f}x"
    )
    print(
        f"startup    process / inprocess = "
        f"{med['process']['startup'] / med['inprocess']['startup']:5.2f}x"
    )


if __name__ == "__main__":
    main()
