"""gc racing builds never breaks them (real processes, no sleeps between gc runs)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SHOWCASE, run_cli, stop_process, tool_env
from reflex_buildd_client.cache.status import read_journal
from reflex_buildd_client.cache.store import Cache
from reflex_buildd_client.cache.verify import verify_artifact

pytestmark = pytest.mark.slow

# gc with a one-byte cap in a tight loop: it evicts every artifact it may and
# drops every blob no artifact links, as fast as it can.
GC_LOOP = """
import sys
from reflex_buildd.gc import GcPolicy, collect
from reflex_buildd_client.cache.store import Cache
cache, runs, evicted = Cache(sys.argv[1]), 0, 0
stop = __import__("pathlib").Path(sys.argv[2])
while not stop.exists():
    report = collect(cache, GcPolicy(max_size=1))
    runs += 1
    evicted += len(report.evicted)
print(runs, evicted, flush=True)
"""


def test_gc_in_a_loop_never_breaks_concurrent_builds(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    shutil.copytree(SHOWCASE, project, ignore=shutil.ignore_patterns("__pycache__"))
    cache = Cache(tmp_path / "cache")
    page = project / "showcase" / "showcase.py"
    base = page.read_text()
    stop = tmp_path / "stop"
    gc = subprocess.Popen(
        [sys.executable, "-c", GC_LOOP, str(cache.root), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=tool_env(),
    )
    try:
        keys = []
        for i in range(3):
            page.write_text(base + f"\nLABEL = 'race {i}'\n")
            result = run_cli("build", str(project), "--json", cache_dir=cache.root)
            assert result.returncode == 0, result.stderr
            keys.append(json.loads(result.stdout.splitlines()[-1])["key"])
            assert gc.poll() is None, gc.stderr.read() if gc.stderr else ""
        stop.touch()
        out, err = gc.communicate(timeout=60)
    finally:
        stop.touch()
        stop_process(gc)
    assert gc.returncode == 0, err
    runs, evicted = map(int, out.split())
    assert runs > 3 and evicted >= 1, out
    assert len(set(keys)) == 3
    published = [e["key"] for e in read_journal(cache) if e["event"] == "published"]
    assert published == keys  # each build published once, none had to start over
    # Whatever is left is whole, and a last build (now without gc) is sound.
    result = run_cli("build", str(project), "--json", cache_dir=cache.root)
    assert result.returncode == 0, result.stderr
    artifact = cache.open(keys[-1])
    assert artifact is not None
    verify_artifact(artifact)
    assert run_cli("verify", cache_dir=cache.root).returncode == 0
