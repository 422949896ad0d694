"""What the warm-workspace reset costs, and what keeping ``node_modules`` saves.

Every build first empties its workspace but for a trusted ``node_modules``
(fingerprinted: path, type, size and mtime of every entry). Measured in one
run on the showcase example, after one cold build:

- a warm build after a one-line edit (the reset keeps ``node_modules``);
- a build whose workspace lost ``node_modules`` (what an untrusted one costs);
- the reset itself (taking the workspace, fingerprinting, emptying, releasing),
  in process, without a build.

Printed as ratios against the warm build, measured in the same run.

Run: ``.venv/bin/python benchmarks/bench_workspace.py`` (about a minute).
"""

from __future__ import annotations

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
from reflex_buildd.build import project_workspace, workspace_facts  # noqa: E402
from reflex_buildd.workspace import NODE_MODULES, fingerprint  # noqa: E402
from reflex_buildd_client.cache.store import Cache  # noqa: E402
from reflex_buildd_client.project import find_project  # noqa: E402

REPEAT = 3


def build(project: Path, cache: Path) -> float:
    cmd = [sys.executable, "-m", "reflex_buildd", "build", str(project), "--cache-dir", str(cache)]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, timeout=600, env=tool_env())
    return time.perf_counter() - started


def edit(project: Path, n: int) -> None:
    page = next((project / "showcase").glob("showcase.py"))
    page.write_text(page.read_text() + f"\n# edit {n}\n")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-workspace-") as tmp:
        project = Path(tmp) / "showcase"
        shutil.copytree(SHOWCASE, project, ignore=shutil.ignore_patterns("__pycache__", ".web"))
        cache = Path(tmp) / "cache"
        build(project, cache)  # cold: installs node_modules
        workspace = project_workspace(Cache(cache), find_project(project))
        modules = workspace.web_dir / NODE_MODULES
        files = sum(1 for _ in modules.rglob("*"))

        warm, fresh, resets, prints = [], [], [], []
        for n in range(REPEAT):
            edit(project, 2 * n)
            warm.append(build(project, cache))
            shutil.rmtree(modules)
            edit(project, 2 * n + 1)
            fresh.append(build(project, cache))
        facts = workspace_facts()
        for _ in range(REPEAT):
            started = time.perf_counter()
            fingerprint(modules)
            prints.append(time.perf_counter() - started)
            started = time.perf_counter()
            with workspace.occupy(facts=facts) as tenancy:
                tenancy.succeeded = True
            resets.append(time.perf_counter() - started)

    base = statistics.median(warm)
    print(f"node_modules: {files} entries")
    print(f"warm build (node_modules kept):   {base:6.2f} s  1.00x")
    print(
        f"build without node_modules:       {statistics.median(fresh):6.2f} s  "
        f"{statistics.median(fresh) / base:.2f}x"
    )
    print(
        f"fingerprint of node_modules:      {statistics.median(prints) * 1000:6.1f} ms "
        f"{statistics.median(prints) / base:.4f}x"
    )
    print(
        f"reset (take, check, empty, free): {statistics.median(resets) * 1000:6.1f} ms "
        f"{statistics.median(resets) / base:.4f}x"
    )


if __name__ == "__main__":
    main()
