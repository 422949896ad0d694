"""Hostile websocket and upload clients against process mode, beside normal ones (issue 19).

One uvicorn host mounts the rows fixture app (``tests/fixtures/rows_app``)
with ``backend="process"``. In the same run:

1. quiet: ``--normal`` normal clients (raw socket.io, ``eventclient.py``),
   each sending one event every ``--interval`` seconds, for ``--seconds``;
2. hostile: the same normal clients, and beside them (in another process, so
   that their work does not delay the normal clients' loop) ``--hostile``
   websocket clients that open a session, send an event and drop the TCP
   connection without a close frame, over and over, and ``--uploads``
   clients that start an upload to ``/_upload`` and abort it half-way, over
   and over, for ``--seconds``;
3. settle for a few seconds, then count file descriptors again.

Reported: the normal clients' event round trip p50/p99 in both phases (goal:
hostile p99 at most 1.5x quiet), how many hostile sessions and aborted
uploads ran, tracebacks in the host's log (it holds the child's output too;
goal 0), and the open file descriptors of the host and of the child
(``/proc/<pid>/fd``) after the quiet phase and after the settle (goal: no
growth).

Run (about 2.5 minutes with the default 60 s per phase):
    .venv/bin/python benchmarks/bench_hostile_ws.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from bench_backend import ROWS_EVENT, children_of, cpu_seconds  # noqa: E402
from conftest import build_fixture_app, spawn_host, stop_process, wait_ready  # noqa: E402
from eventclient import EventClient  # noqa: E402

UPLOAD_HANDLER = "reflex___state____state.rows_app___rows_app____rows_state.handle_upload"
SETTLE = 8.0  # past the forwarder's idle-connection expiry (4 s) and socket.io cleanup


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# -- normal clients ------------------------------------------------------------


async def _normal(base: str, seconds: float, interval: float, rtts: list[float]) -> None:
    client = EventClient(base)
    await client.connect()
    try:
        await client.event(ROWS_EVENT)  # the state exists before timing starts
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            rtt = await client.event(ROWS_EVENT)
            rtts.append(rtt)
            await asyncio.sleep(max(interval - rtt, 0))
    finally:
        await client.close()


async def normal_phase(base: str, clients: int, seconds: float, interval: float) -> list[float]:
    rtts: list[float] = []
    await asyncio.gather(*(_normal(base, seconds, interval, rtts) for _ in range(clients)))
    return rtts


# -- hostile clients (run in a process of their own) ------------------------------


async def _dropper(base: str, deadline: float, counts: dict[str, int]) -> None:
    while time.monotonic() < deadline:
        client = EventClient(base, timeout=10)
        try:
            await client.connect()
            await client.event(ROWS_EVENT)
            await asyncio.sleep(random.uniform(0.2, 1.5))
            counts["dropped sessions"] += 1
        except (OSError, TimeoutError, ConnectionError) as exc:
            counts[f"failed: {type(exc).__name__}"] = (
                counts.get(f"failed: {type(exc).__name__}", 0) + 1
            )
            await asyncio.sleep(0.5)
        finally:
            client.drop()  # no close frame, no FIN handshake of websockets: just gone


async def _aborted_upload(
    address: tuple[str, int], deadline: float, counts: dict[str, int]
) -> None:
    boundary = "reflexbuilddbench"
    part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="x.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    while time.monotonic() < deadline:
        head = (
            f"POST /admin/_upload HTTP/1.1\r\nHost: {address[0]}:{address[1]}\r\n"
            f"Reflex-Client-Token: {os.urandom(8).hex()}\r\nReflex-Event-Handler: {UPLOAD_HANDLER}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {1024 * 1024}\r\n\r\n"
        ).encode()
        try:
            _, writer = await asyncio.open_connection(*address)
            writer.write(head + part + os.urandom(64 * 1024))
            await writer.drain()
            await asyncio.sleep(random.uniform(0.05, 0.3))
            writer.transport.abort()  # half an upload, then gone
            counts["aborted uploads"] += 1
        except OSError:
            counts["failed uploads"] = counts.get("failed uploads", 0) + 1
        await asyncio.sleep(random.uniform(0.05, 0.2))


async def hostile_phase(url: str, hostile: int, uploads: int, seconds: float) -> dict[str, int]:
    base = "ws" + url[4:] + "/admin"
    name, port = url.removeprefix("http://").split(":")
    deadline = time.monotonic() + seconds
    counts = {"dropped sessions": 0, "aborted uploads": 0}
    await asyncio.gather(
        *(_dropper(base, deadline, counts) for _ in range(hostile)),
        *(_aborted_upload((name, int(port)), deadline, counts) for _ in range(uploads)),
    )
    return counts


# -- the run -----------------------------------------------------------------------


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(int(len(ordered) * q) - 1, 0)] * 1000


def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-hostile-ws-") as tmp:
        cache = Path(tmp) / "cache"
        app = build_fixture_app("rows_app", cache, Path(tmp))
        host = spawn_host(
            "tests.hosts.project_host:app",
            cache_dir=cache,
            log_dir=Path(tmp),
            MOUNT_PROJECT=str(app.project),
            REFLEX_BUILDD_BACKEND=args.mode,
            REFLEX_BUILDD_POLICY="fail",
        )
        try:
            wait_ready(host, "/admin/ping")
            # In-process there is no child: the host counts twice.
            (child,) = children_of(host.process.pid) or (host.process.pid,)
            base = "ws" + host.url[4:] + "/admin"
            asyncio.run(normal_phase(base, args.normal, 2.0, args.interval))  # warm-up
            time.sleep(SETTLE)
            fds_before = (fd_count(host.process.pid), fd_count(child))
            cpu = [(cpu_seconds(host.process.pid), cpu_seconds(child))]
            quiet = asyncio.run(normal_phase(base, args.normal, args.seconds, args.interval))
            cpu.append((cpu_seconds(host.process.pid), cpu_seconds(child)))
            hostile_proc = subprocess.Popen(
                [sys.executable, __file__, "--hostile-worker", host.url, *_forward(args)],
                stdout=subprocess.PIPE,
                text=True,
            )
            time.sleep(1.0)  # the hostile clients are under way
            loud = asyncio.run(normal_phase(base, args.normal, args.seconds, args.interval))
            cpu.append((cpu_seconds(host.process.pid), cpu_seconds(child)))
            out, _ = hostile_proc.communicate(timeout=args.seconds + 60)
            counts = json.loads(out.strip().splitlines()[-1])
            time.sleep(SETTLE)
            fds_after = (fd_count(host.process.pid), fd_count(child))
            same_child = child in children_of(host.process.pid)
            log = host.output()
        finally:
            stop_process(host.process)
    report(
        args,
        {"quiet": quiet, "hostile": loud, "cpu": cpu},
        counts,
        log,
        (fds_before, fds_after, same_child),
    )


def report(
    args: argparse.Namespace,
    timed: dict[str, list],
    counts: dict[str, int],
    log: str,
    fds: tuple[tuple[int, int], tuple[int, int], bool],
) -> None:
    """Print the run's results against its goals."""
    quiet, loud, cpu = timed["quiet"], timed["hostile"], timed["cpu"]
    fds_before, fds_after, same_child = fds
    tracebacks = log.count("Traceback")
    asgi_errors = log.count("Exception in ASGI application")
    print(
        f"{args.mode} mode, rows fixture app, {args.normal} normal clients (one event every "
        f"{args.interval:g}s each), {args.hostile} dropping websocket clients, {args.uploads} "
        f"aborting upload clients, {args.seconds:g}s per phase"
    )
    print(f"{'normal clients':28} {'quiet':>10} {'hostile':>10} {'ratio':>7}")
    for label, q in (("event round trip p50 (ms)", 0.5), ("event round trip p99 (ms)", 0.99)):
        a, b = _p(quiet, q), _p(loud, q)
        print(f"{label:28} {a:10.2f} {b:10.2f} {b / a:7.2f}")
    print(f"{'events timed':28} {len(quiet):10d} {len(loud):10d}")
    for i, who in enumerate(("host", "child")):
        a, b = cpu[1][i] - cpu[0][i], cpu[2][i] - cpu[1][i]
        print(f"{who + ' CPU (s/s)':28} {a / args.seconds:10.2f} {b / args.seconds:10.2f}")
    print()
    print("hostile work done:", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print(
        f"tracebacks in the host's log: {tracebacks} (Exception in ASGI application: {asgi_errors})"
    )
    print(
        f"open fds, host: {fds_before[0]} -> {fds_after[0]}; child: {fds_before[1]} -> "
        f"{fds_after[1]} (the same child throughout: {same_child})"
    )
    ratio = _p(loud, 0.99) / _p(quiet, 0.99)
    print(
        f"p99 hostile / quiet = {ratio:.2f}x (goal <= 1.5x); tracebacks {tracebacks} (goal 0); "
        f"fd growth host {fds_after[0] - fds_before[0]:+d}, child {fds_after[1] - fds_before[1]:+d} "
        "(goal <= 0)"
    )


def _forward(args: argparse.Namespace) -> list[str]:
    return [
        "--seconds",
        str(args.seconds + 1.0),
        "--hostile",
        str(args.hostile),
        "--uploads",
        str(args.uploads),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="per phase")
    parser.add_argument("--normal", type=int, default=10, help="normal clients")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between events")
    parser.add_argument("--hostile", type=int, default=50, help="dropping websocket clients")
    parser.add_argument("--uploads", type=int, default=5, help="aborting upload clients")
    parser.add_argument(
        "--mode", default="process", help="the backend mode (inprocess: for comparison)"
    )
    parser.add_argument("--hostile-worker", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hostile_worker:
        counts = asyncio.run(
            hostile_phase(args.hostile_worker, args.hostile, args.uploads, args.seconds)
        )
        print(json.dumps(counts), flush=True)
        return
    socket.setdefaulttimeout(30)
    run(args)


if __name__ == "__main__":
    main()
