"""Disk used by successive builds of one project, with each file stored once.

Builds a copy of the showcase example N times (default 20) into a fresh
cache with a one-line edit between builds (the text of a heading), then compares the disk the
artifacts take (blob store included, each inode counted once, as ``du`` does)
with N times the size of one artifact (what a cache without sharing would
take). Goal: a ratio of at most 0.3.

Also times the client's full re-hash of one artifact (what a host does once
when it first opens an artifact).

Run: ``.venv/bin/python benchmarks/bench_disk.py [N]`` (about 5 s a build).
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
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHOWCASE = REPO / "examples" / "showcase"
sys.path.insert(0, str(REPO / "tests"))

from conftest import tool_env  # noqa: E402
from reflex_buildd_client.cache.store import Cache  # noqa: E402
from reflex_buildd_client.cache.verify import verify_artifact  # noqa: E402


def disk_used(*roots: Path) -> int:
    """Bytes allocated to the files under ``roots``, each inode once (like ``du``)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                st = os.lstat(os.path.join(dirpath, name))
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_blocks * 512
    return total


def build(project: Path, cache: Path) -> str:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "reflex_buildd",
            "build",
            str(project),
            "--json",
            "--cache-dir",
            str(cache),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
        env=tool_env(),
    ).stdout
    return str(json.loads(out.strip().splitlines()[-1])["key"])


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with tempfile.TemporaryDirectory(prefix="bench-disk-") as tmp_name:
        tmp = Path(tmp_name)
        project = tmp / "showcase"
        shutil.copytree(SHOWCASE, project, ignore=shutil.ignore_patterns("__pycache__"))
        cache_dir = tmp / "cache"
        cache = Cache(cache_dir)
        page = project / "showcase" / "showcase.py"
        base = page.read_text()
        assert 'rx.heading("About"' in base, "the edit below needs this line"
        keys = []
        started = time.perf_counter()
        for i in range(count):
            # A one-line edit that shows on a page (a new key, and new output).
            page.write_text(base.replace('rx.heading("About"', f'rx.heading("About {i}"', 1))
            keys.append(build(project, cache_dir))
            print(f"build {i + 1:2d}/{count}: {keys[-1]}", file=sys.stderr)
        seconds = time.perf_counter() - started
        assert len(set(keys)) == count, "every edit should make a new key"

        one = statistics.median(disk_used(cache.artifact_dir(k)) for k in keys)
        # Artifacts and blobs together; an inode shared by both counts once.
        together = disk_used(cache.base / "artifacts", cache.base / "blobs")

        artifact = cache.open(keys[-1])
        assert artifact is not None
        hashes = []
        for _ in range(7):
            t0 = time.perf_counter()
            verify_artifact(artifact)
            hashes.append(time.perf_counter() - t0)
        files = len(artifact.manifest.files)
        size = sum(e.size for e in artifact.manifest.files.values())

    print(f"builds: {count} in {seconds:.0f}s")
    print(f"one artifact on disk (median):        {one / 1024:9.0f} KiB")
    print(f"{count} artifacts without sharing:       {count * one / 1024:9.0f} KiB")
    print(f"{count} artifacts with the blob store:   {together / 1024:9.0f} KiB")
    print(f"ratio: {together / (count * one):.3f}  (goal <= 0.3)")
    print(
        f"client verify (full blake3 re-hash) of {files} files, {size / 1024:.0f} KiB: "
        f"{statistics.median(hashes) * 1000:.1f} ms (median of {len(hashes)})"
    )


if __name__ == "__main__":
    main()
