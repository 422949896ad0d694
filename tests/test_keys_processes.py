"""The client and the daemon agree on the key, in separate processes started
from different working directories, and for a copy of the project elsewhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parent.parent
SHOWCASE = REPO / "examples" / "showcase"
TOOLS_BIN = REPO / ".tools" / "node_modules" / ".bin"

CLIENT = """
import sys
from reflex_buildd_client.project import find_project
from reflex_buildd_client.inputs.sources import compute_key
from reflex_buildd_client.settings import Settings
print(compute_key(find_project(sys.argv[1]), settings=Settings.load(), cache_dir=sys.argv[2])[0])
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REFLEX_", "VITE_"))}
    if (TOOLS_BIN / "bun").exists():
        # Both sides probe the real runtime.
        env["PATH"] = f"{TOOLS_BIN}{os.pathsep}{env.get('PATH', '')}"
    else:
        env["REFLEX_BUILDD_JS_RUNTIME"] = "bun@pinned"
    return env


def _run(args: list[str], cwd: Path) -> str:
    proc = subprocess.run(
        args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=90, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def test_client_and_daemon_compute_the_same_key(tmp_path: Path) -> None:
    project = tmp_path / "work" / "showcase"
    shutil.copytree(SHOWCASE, project, ignore=shutil.ignore_patterns("__pycache__", ".web"))
    client_cwd, daemon_cwd = tmp_path / "work", tmp_path / "elsewhere" / "deeper"
    daemon_cwd.mkdir(parents=True)

    client = _run(
        [sys.executable, "-c", CLIENT, "showcase", str(tmp_path / "client-cache")], client_cwd
    )
    cli = Path(sys.executable).with_name("reflex-buildd")
    daemon = _run(
        [
            str(cli),
            "key",
            os.path.relpath(project, daemon_cwd),
            "--cache-dir",
            str(tmp_path / "daemon-cache"),
        ],
        daemon_cwd,
    )
    assert len(client) == 32 and client == daemon

    moved = tmp_path / "moved" / "somewhere" / "else"
    shutil.copytree(project, moved)
    assert (
        _run([str(cli), "key", str(moved), "--cache-dir", str(tmp_path / "c3")], tmp_path) == client
    )
