"""Several mounts in one process (issue 5, part 4).

One project at two paths of one host is fine (one backend, one lifespan); a
second, *different* Reflex project in the same process fails with a
clear error that names the way out (``backend="process"``, tested in
test_mounted_unchanged.py), not a silent mix of two apps' states.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, Built, free_port, run_cli, tool_env

pytestmark = [pytest.mark.slow]

SECOND = Path(__file__).resolve().parent / "fixtures" / "second_app" / "project"


@pytest.fixture(scope="module")
def second_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Its own cache: other tests count the artifacts of the shared one."""
    return tmp_path_factory.mktemp("second-cache")


@pytest.fixture(scope="module")
def second_build(second_cache: Path) -> Built:
    result = run_cli("build", str(SECOND), "--json", cache_dir=second_cache)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    return Built(key=data["key"], path=Path(data["path"]))


def test_second_project_in_one_process_fails_at_startup(
    showcase_build: Built, second_build: Built, second_cache: Path, cache_dir: Path, tmp_path: Path
) -> None:
    assert second_build.key != showcase_build.key
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "tests.fixtures.second_app.host:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=tool_env(
            REFLEX_BUILDD_CACHE_DIR=str(cache_dir),
            SECOND_APP_CACHE_DIR=str(second_cache),
            REFLEX_UPLOADED_FILES_DIR=str(tmp_path / "uploads"),
            REFLEX_STATES_WORKDIR=str(tmp_path / "states"),
            # The mode in which a backend that cannot start fails the host's startup.
            REFLEX_BUILDD_BACKEND_START="startup",
        ),
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Application startup failed" in output, output
    assert "Reflex keeps one app per process" in output, output
    assert 'backend="process"' in output, output
    # The message names both projects.
    assert "showcase" in output and "second_app" in output, output
    assert (REPO / "tests" / "fixtures" / "second_app" / "project" / ".web").exists() is False
