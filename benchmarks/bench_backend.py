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

Run (about a minute; builds the showcase into a temporary cache first):
    .venv/bin/python benchmarks/bench_backend.py
"""

from __future__ import annotations

import argparse
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
    run_cli,
    spawn_host,
    stop_process,
    wait_ready,
)

MODES = ("inprocess", "process")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clicks", type=int, default=30)
    args = parser.parse_args()
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
