"""SIGKILL the builder at random moments (publish is atomic): never a partial artifact,
never a lock held forever, and the next build succeeds.

Marked ``stress``; it runs in CI with everything else (``pytest -m "not stress"``
skips it locally when in a hurry).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import blake3
import pytest
from filelock import FileLock

from conftest import SHOWCASE, run_cli, tool_env
from reflex_buildd_client.cache.status import BuildState, read_status
from reflex_buildd_client.cache.store import Cache
from reflex_buildd_client.project import project_id

pytestmark = [pytest.mark.stress, pytest.mark.slow]

KILLS = 20


def _verify_all(cache: Cache) -> list[str]:
    """Open and fully re-hash every visible artifact; return their keys."""
    keys = []
    artifacts = cache.base / "artifacts"
    for entry in sorted(artifacts.iterdir()) if artifacts.exists() else []:
        artifact = cache.open(entry.name)
        assert artifact is not None, f"{entry} is visible without a manifest"
        for rel, meta in artifact.manifest.files.items():
            digest = blake3.blake3((entry / rel).read_bytes()).hexdigest()
            assert digest == meta.digest, f"{entry}/{rel} does not match its manifest"
        keys.append(entry.name)
    return keys


def test_sigkill_at_random_moments_never_corrupts(tmp_path: Path) -> None:
    seed = int(os.environ.get("REFLEX_BUILDD_STRESS_SEED", time.time_ns() % 100_000))
    rng = random.Random(seed)
    project = tmp_path / "proj"
    shutil.copytree(SHOWCASE, project, ignore=shutil.ignore_patterns("__pycache__"))
    cache_dir = tmp_path / "cache"
    cache = Cache(cache_dir)
    page = project / "showcase" / "showcase.py"
    base = page.read_text()
    # Warm the workspace once, so kills land across the whole build, not
    # mostly in the first package install.
    assert run_cli("build", str(project), cache_dir=cache_dir).returncode == 0
    workspace_lock = cache.work_dir(project_id(project.resolve())).as_posix() + ".lock"

    for i in range(KILLS):
        page.write_text(base + f"\n# stress edit {i}\n")  # a new key each round
        key = run_cli("key", str(project), cache_dir=cache_dir).stdout.strip()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reflex_buildd",
                "build",
                str(project),
                "--cache-dir",
                str(cache_dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=tool_env(),
        )
        delay = rng.uniform(0.0, 5.0)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        context = f"round {i}, killed after {delay:.2f}s (seed {seed})"

        _verify_all(cache)
        # The key's lock is free at once (flock dies with its holder) ...
        lock = FileLock(str(cache.lock_path(key)))
        lock.acquire(timeout=0)
        lock.release()
        # ... and the workspace lock as soon as the orphaned export is gone
        # (it gets SIGKILL from its parent's death).
        ws = FileLock(workspace_lock)
        ws.acquire(timeout=10)
        ws.release()
        state = read_status(cache, key).state
        assert state in (BuildState.ABSENT, BuildState.READY), f"{context}: {state}"

    # The next build succeeds, and so does a build of a key killed mid-way.
    result = run_cli("build", str(project), "--json", cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    keys = _verify_all(cache)
    assert key in keys
    leftovers = [p for p in (cache.base / "tmp").iterdir()]
    assert not leftovers, f"scratch of dead builders not cleaned: {leftovers}"
