"""The CLI's own overhead: a warm ``reflex-buildd key`` as a whole process, against ``python -c pass``.

Both run in turn in the same run (so machine noise hits both alike); the key is
warm (stat cache and site index in place), so what is left is interpreter
start, imports and a stat per input file. Goal: at most 0.08 s for the key
command on the showcase.

Run: ``.venv/bin/python benchmarks/bench_cli.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHOWCASE = REPO / "examples" / "showcase"


def _run(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, timeout=120, env=env)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as cache:
        key = [sys.executable, "-m", "reflex_buildd", "key", str(SHOWCASE), "--cache-dir", cache]
        floor = [sys.executable, "-c", "pass"]
        _run(key, env)  # warm the stat cache, the site index and the page cache
        _run(floor, env)
        keys, floors = [], []
        for _ in range(args.repeat):
            keys.append(_run(key, env))
            floors.append(_run(floor, env))
    key_s, floor_s = statistics.median(keys), statistics.median(floors)
    print(
        f"[python {sys.version.split()[0]}, {os.cpu_count()} cpus, {args.repeat} runs each, medians]"
    )
    print(f"{'python -c pass':<40} {floor_s * 1000:8.1f} ms")
    print(f"{'reflex-buildd key (warm, whole process)':<40} {key_s * 1000:8.1f} ms")
    print(f"{'ratio key / python -c pass':<40} {key_s / floor_s:8.1f}x")
    print(f"{'overhead over the interpreter':<40} {(key_s - floor_s) * 1000:8.1f} ms")
    print(f"goal: key at most 80 ms: {'met' if key_s <= 0.08 else 'NOT met'}")


if __name__ == "__main__":
    main()
