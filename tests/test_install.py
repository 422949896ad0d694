"""The tutorial, followed as written in a clean virtualenv.

Its install block runs as a script (the checkout's path and a scratch home
put in for the placeholders), then its build step, then its ``host.py`` under
uvicorn, then one request, then its dev step (``reflex-buildd dev``, on a free
port) until the page answers, stopped as Ctrl-C would. pip reaches the
package index and reuses its own cache; nothing of the test suite's
virtualenv is visible to the new one.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO, SHOWCASE, free_port, stop_process, wait_for, wait_listening

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

TUTORIAL = REPO / "docs" / "tutorial.md"
_METADATA_CHECK = """
import importlib.metadata as m, re
d = m.distribution("reflex-buildd")
print("license:" + ("yes" if any(f.name == "LICENSE" for f in d.files or ()) else "no"))
print("relative-links:%d" % len(re.findall(r"\\]\\((?!https?://)", d.metadata.get_payload())))
"""


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", TUTORIAL.read_text(), re.S)


def _install_block() -> str:
    (block,) = [b for b in _blocks("bash") if "/path/to/reflex-buildd" in b]
    return block


def _dev_command() -> list[str]:
    """Step 4's command, as written (the test adds a free port)."""
    (line,) = [
        line
        for b in _blocks("bash")
        for line in b.splitlines()
        if line.startswith("reflex-buildd dev ")
    ]
    return line.split("#", 1)[0].split()


def _host_block() -> str:
    (block,) = [b for b in _blocks("python") if b.startswith("# host.py")]
    return block


def _clean_env() -> dict[str, str]:
    """No trace of the suite's venv: its bin off PATH, no PYTHONPATH, no VIRTUAL_ENV.

    The user's own configuration stays (``~/.config/pip``, ``~/.npmrc``: the
    package index and registry this machine reaches), as it would for them.
    """
    drop = (
        "PYTHONPATH",
        "VIRTUAL_ENV",
        "PYTHONHOME",
        "REFLEX_BUILDD_BUN",
        "REFLEX_BUILDD_CACHE_DIR",
    )
    env = {k: v for k, v in os.environ.items() if k not in drop}
    suite_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != suite_bin
    )
    env["REFLEX_TELEMETRY_ENABLED"] = "false"
    return env


def _run_script(script: str, *, cwd: Path, env: dict[str, str], timeout: float) -> str:
    """Run a bash script in its own process group; kill the whole group on a timeout."""
    process = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    assert process.returncode == 0, output[-4000:]
    return output


def test_the_tutorial_in_a_clean_virtualenv(tmp_path: Path) -> None:
    work, tools = tmp_path / "work", tmp_path / "tools"
    (work / "examples").mkdir(parents=True)
    shutil.copytree(
        SHOWCASE, work / "examples" / "showcase", ignore=shutil.ignore_patterns("__pycache__")
    )
    (work / "requirements.txt").write_text("# the showcase needs nothing beyond Reflex\n")
    (work / "host.py").write_text(_host_block())
    env = _clean_env()

    # 1. Install, as written; the environment it leaves is the one of the next steps.
    script = (
        _install_block()
        .replace("/path/to/reflex-buildd", str(REPO))
        .replace("~/.local/share/reflex-buildd", str(tools))
    )
    dump = tmp_path / "env.txt"
    _run_script(f"{script}\nenv -0 > {dump}", cwd=work, env=env, timeout=420)
    env = dict(item.split("=", 1) for item in dump.read_text().split("\0") if "=" in item)
    venv = work / ".venv"
    assert Path(env["VIRTUAL_ENV"]) == venv
    assert Path(env["REFLEX_BUILDD_BUN"]).is_file()
    # A real install, not the checkout on sys.path: the package lives in the new venv.
    where = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import reflex_buildd_client; print(reflex_buildd_client.__file__)",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert where.stdout.startswith(str(venv)), where.stdout
    # What an index would show: the license shipped, the README without relative links.
    shipped = subprocess.run(
        [str(venv / "bin" / "python"), "-c", _METADATA_CHECK],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shipped.stdout.split() == ["license:yes", "relative-links:0"], shipped

    # 2. Build once (and the second time it is cached).
    env["REFLEX_BUILDD_CACHE_DIR"] = str(tmp_path / "cache")
    for verb in ("built", "cached"):
        built = subprocess.run(
            ["reflex-buildd", "build", "examples/showcase"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert built.returncode == 0, built.stderr
        assert f"{verb} {built.stdout.split()[-1]}" in built.stderr

    # 3. Mount it: the tutorial's host.py under uvicorn, one request each.
    port = free_port()
    log = tmp_path / "host.log"
    with log.open("wb") as out:
        host = subprocess.Popen(
            ["uvicorn", "host:app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=work,
            env={**env, "REFLEX_BUILDD_POLICY": "fail"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_listening(port, host, timeout=90, what="the tutorial's host")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/", timeout=10) as resp:
            assert resp.status == 200 and b'name="reflex-buildd"' in resp.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as resp:
            assert resp.read() == b'{"ok":true}'
    finally:
        stop_process(host)
    assert "Application startup complete" in log.read_text(), log.read_text()

    # 4. Develop: the dev step with what step 1 installed, nothing more.
    _dev_step(work, env, tmp_path)


def _dev_step(work: Path, env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "dev.log"
    with log.open("wb") as out:
        dev = subprocess.Popen(
            [*_dev_command(), "--port", str(port)],
            cwd=work,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # The first session installs the frontend packages (bun): allow for it.
        wait_for(
            lambda: (
                dev.poll() is not None or f"at http://127.0.0.1:{port}/admin/" in log.read_text()
            ),
            timeout=300,
            what="the dev step's URL",
        )
        assert dev.poll() is None, log.read_text()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/", timeout=60) as resp:
            assert resp.status == 200 and b'name="reflex-buildd"' in resp.read()
        dev.send_signal(signal.SIGINT)  # Ctrl-C
        assert dev.wait(timeout=60) == 0, log.read_text()
    finally:
        stop_process(dev)
    said = log.read_text()
    assert "showcase at http://127.0.0.1" in said and "vite: error" not in said, said
