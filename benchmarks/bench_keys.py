"""Benchmark: keying a synthetic project of 5,000 files (200 MB).

Measures, in one run and on the same (page-cached) files:

- the I/O floor: ``cat`` of every input file to /dev/null (through ``xargs``);
- a cold key: :func:`compute_key` with no stat cache (every file read and hashed);
- a warm key: :func:`compute_key` with the stat cache of a previous run.

and prints cold/floor (goal: <= 1.5) and cold/warm (goal: >= 20).

With the files in the page cache, "cold" is CPU-bound (blake3 of 200 MB) and
the warm key is bounded by one ``stat`` per file, so cold/warm stays near 4x.
As root, a second pass drops the page cache before each cold key and each
``cat`` (``/proc/sys/vm/drop_caches``): the cold key after a reboot or on a
fresh checkout, which is what a stat cache saves. Not part of the test suite.
Run::

    .venv/bin/python benchmarks/bench_keys.py [--files 5000] [--megabytes 200]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from reflex_buildd_client.inputs.sources import compute_key, iter_input_files, stat_cache_path
from reflex_buildd_client.keys.statcache import RACY_WINDOW_NS
from reflex_buildd_client.project import find_project
from reflex_buildd_client.settings import Settings


def make_project(root: Path, files: int, total_bytes: int) -> None:
    """A Reflex-shaped project: rxconfig.py, an app package, assets, data."""
    rng = random.Random(4)
    (root / "rxconfig.py").write_text('import reflex as rx\nconfig = rx.Config(app_name="bench")\n')
    (root / "bench").mkdir()
    (root / "bench" / "__init__.py").write_text("")
    (root / "bench" / "bench.py").write_text("import reflex as rx\napp = rx.App()\n")
    # Sizes vary over two orders of magnitude, like real assets and sources.
    weights = [rng.lognormvariate(0, 1.2) for _ in range(files)]
    scale = total_bytes / sum(weights)
    blob = os.urandom(4 << 20)
    for i, weight in enumerate(weights):
        size = max(1, int(weight * scale))
        folder = root / ("assets" if i % 2 else "bench") / f"d{i % 50:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        suffix = ".bin" if i % 2 else ".txt"
        start = rng.randrange(0, len(blob) - min(size, len(blob)) + 1)
        data = (blob[start : start + size] * (size // len(blob) + 1))[:size]
        (folder / f"f{i:05d}{suffix}").write_bytes(data)


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _can_drop_caches() -> bool:
    return os.geteuid() == 0 and os.access("/proc/sys/vm/drop_caches", os.W_OK)


def _drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("REFLEX_BUILDD_JS_RUNTIME", "bun@bench")  # no probe noise
    tmp = Path(tempfile.mkdtemp(prefix="bench-keys-"))
    try:
        root, cache_dir = tmp / "project", tmp / "cache"
        root.mkdir()
        make_project(root, args.files, args.megabytes << 20)
        project = find_project(root)
        paths = sorted(str(p) for p in iter_input_files(root))
        listing = "\0".join(paths).encode()
        total = sum(os.path.getsize(p) for p in paths)
        print(f"{len(paths)} files, {total / 1e6:.1f} MB in {root}")
        # Files younger than the racy window are (correctly) re-hashed even
        # with a stat cache; a real tree at rest is older than that.
        time.sleep(RACY_WINDOW_NS / 1e9 + 0.2)

        def cat() -> None:
            subprocess.run(
                ["xargs", "-0", "cat"], input=listing, stdout=subprocess.DEVNULL, check=True
            )

        def cold() -> None:
            stat_cache_path(cache_dir, project).unlink(missing_ok=True)
            compute_key(project, settings=Settings.load(), cache_dir=cache_dir)

        def warm() -> None:
            compute_key(project, settings=Settings.load(), cache_dir=cache_dir)

        cat()  # page cache and first-import warm-up for everyone
        compute_key(project, settings=Settings.load(), cache_dir=cache_dir)
        floor_s, cold_s, warm_s = [], [], []
        for _ in range(args.repeat):
            floor_s.append(timed(cat))
            cold_s.append(timed(cold))
            warm_s.append(timed(warm))
        floor, cold_t, warm_t = (statistics.median(x) for x in (floor_s, cold_s, warm_s))
        print(f"cat floor : {floor * 1000:8.1f} ms")
        print(
            f"cold key  : {cold_t * 1000:8.1f} ms   cold/floor = {cold_t / floor:.2f}x (goal <= 1.5)"
        )
        print(
            f"warm key  : {warm_t * 1000:8.1f} ms   cold/warm  = {cold_t / warm_t:.1f}x (goal >= 20)"
        )
        if _can_drop_caches():
            floor_d, cold_d = [], []
            for _ in range(args.repeat):
                _drop_caches()
                floor_d.append(timed(cat))
                _drop_caches()
                cold_d.append(timed(cold))
            warm()  # re-record after the cold runs replaced the stat cache
            warm_d = statistics.median(timed(warm) for _ in range(args.repeat))
            floor_c, cold_c = statistics.median(floor_d), statistics.median(cold_d)
            print("page cache dropped before each cat and cold key:")
            print(f"cat floor : {floor_c * 1000:8.1f} ms")
            print(
                f"cold key  : {cold_c * 1000:8.1f} ms   cold/floor = {cold_c / floor_c:.2f}x (goal <= 1.5)"
            )
            print(
                f"warm key  : {warm_d * 1000:8.1f} ms   cold/warm  = {cold_c / warm_d:.1f}x (goal >= 20)"
            )
        else:
            print("(not root: the page-cache-dropped pass is skipped)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
