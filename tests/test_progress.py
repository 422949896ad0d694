"""Long work is never silent: progress lines in a pipe, from the CLI and from hosts.

The app is made slow on purpose (its module sleeps at import, which the
export does while compiling), so the build outlasts several progress
intervals.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SHOWCASE, spawn_host, stop_process, tool_env, wait_ready

pytestmark = pytest.mark.slow

SLEEP = 6.0
_LINE = re.compile(
    r"^(\d\d:\d\d:\d\d) reflex-buildd: (?P<what>[^:]+): (?P<phase>.+) \((?P<s>\d+)s\)$"
)


def _slow_copy(tmp_path: Path) -> Path:
    project = tmp_path / "slow"
    shutil.copytree(SHOWCASE, project, ignore=shutil.ignore_patterns("__pycache__"))
    page = project / "showcase" / "showcase.py"
    page.write_text(f"import time\n\ntime.sleep({SLEEP})  # slow on purpose\n" + page.read_text())
    return project


def test_progress_in_a_pipe_and_from_a_host_that_builds(tmp_path: Path) -> None:
    project, cache = _slow_copy(tmp_path), tmp_path / "cache"
    env = {
        "SHOWCASE_PROJECT": str(project),
        "REFLEX_UPLOADED_FILES_DIR": str(tmp_path / "uploads"),
        "REFLEX_STATES_WORKDIR": str(tmp_path / "states"),
    }
    # stderr is a pipe: no terminal, so plain lines.
    build = subprocess.Popen(
        [sys.executable, "-m", "reflex_buildd", "build", str(project), "--cache-dir", str(cache)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=tool_env(),
    )
    # A host that waits for that build (policy wait) says what the builder is doing.
    waiting = spawn_host(
        "examples.hosts.fastapi_host:app",
        cache_dir=cache,
        log_dir=tmp_path,
        REFLEX_BUILDD_POLICY="wait",
        **env,
    )
    try:
        _out, err = build.communicate(timeout=300)
        wait_ready(waiting, "/health", timeout=180)
    finally:
        if build.poll() is None:
            build.kill()
            build.wait(timeout=10)
        stop_process(waiting.process)
    assert build.returncode == 0, err
    progress = [m for line in err.splitlines() if (m := _LINE.match(line))]
    assert len(progress) >= 3, err
    seconds = [int(m["s"]) for m in progress]
    assert seconds == sorted(seconds), err
    # A line at least every progress interval (5 s), also while nothing new is printed.
    gaps = [b - a for a, b in zip([0, *seconds], seconds, strict=False)]
    assert max(gaps) <= 6, err
    assert seconds[-1] >= SLEEP - 1, err
    assert {m["what"] for m in progress} == {"slow"}
    assert "compiling pages" in {m["phase"] for m in progress}, err
    assert "\x1b[" not in err
    waited = waiting.output()
    phases = re.findall(
        r"INFO: .*waiting for key \w+ \(\d+s so far\): the build by pid \d+ on [^,]+, (.+)", waited
    )
    assert phases, waited  # the waiting host names the builder's phase

    # Edit (a new key) and start a host with the default policy: it builds at
    # startup and says so every few seconds until it serves.
    page = project / "showcase" / "showcase.py"
    page.write_text(page.read_text() + "\n# a new key\n")
    host = spawn_host("examples.hosts.fastapi_host:app", cache_dir=cache, log_dir=tmp_path, **env)
    try:
        wait_ready(host, "/health", timeout=180)
    finally:
        stop_process(host.process)
    output = host.output()
    startup = output[: output.index("Application startup complete")]
    assert "building it here (policy 'build')" in startup, output
    building = re.findall(r"reflex-buildd: building (\w+) \(slow\): (.+) \((\d+)s\)", startup)
    assert len(building) >= 3, output
    assert int(building[-1][2]) >= SLEEP - 1, output
    assert "compiling pages" in {phase for _key, phase, _s in building}, output
