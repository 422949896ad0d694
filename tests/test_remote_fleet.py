"""Two machines and one remote: A builds and pushes, B (no JS runtime) serves what A built.

"Machines" are two cache directories and two kinds of process: A is the
session's builder (bun on PATH), B is a uvicorn host whose Python has no bun
beside it, whose PATH has none, with no runtime pin and startup policy
``fail`` (it cannot build, so whatever it serves came from the remote). A's
own host runs beside it, and both serve the same bytes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import pytest

from browser_checks import check_showcase
from conftest import (
    REPO,
    SHOWCASE,
    Built,
    Host,
    free_port,
    run_cli,
    run_host,
    stop_process,
    wait_ready,
)
from reflex_buildd_client.cache.status import read_journal
from reflex_buildd_client.cache.store import Cache

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This venv's Python seen from a directory without bun: a machine with no JS runtime."""
    root = tmp_path_factory.mktemp("bare-venv")
    venv = Path(sys.prefix)
    (root / "bin").mkdir()
    (root / "pyvenv.cfg").write_bytes((venv / "pyvenv.cfg").read_bytes())
    (root / "lib").symlink_to(venv / "lib")
    (root / "bin" / "python").symlink_to(venv / "bin" / "python")
    return root / "bin" / "python"


def _bare_env(python: Path, tmp: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REFLEX_", "AWS_")) and k not in ("PATH", "PYTHONPATH")
    }
    env.update(
        PATH=os.pathsep.join([str(python.parent), "/usr/bin", "/bin"]),
        PYTHONPATH=str(REPO),
        PYTHONDONTWRITEBYTECODE="1",
        REFLEX_TELEMETRY_ENABLED="false",
        REFLEX_DIR=str(tmp / "no-reflex-dir"),  # no Reflex-installed bun either
        REFLEX_UPLOADED_FILES_DIR=str(tmp / "uploads"),
        REFLEX_STATES_WORKDIR=str(tmp / "states"),
    )
    env.update(extra)
    return env


def _get(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"Accept-Encoding": "identity"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return bytes(resp.read())


def _spawn(python: Path, tmp: Path, env: dict[str, str]) -> Host:
    port = free_port()
    log = tmp / f"host-b-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *(str(python), "-m", "uvicorn", "examples.hosts.fastapi_host:app"),
                *("--host", "127.0.0.1", "--port", str(port)),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp,
            env=env,
        )
    return Host(f"http://127.0.0.1:{port}", process, log)


@pytest.fixture
def pushed(s3: Any, showcase_build: Built, cache_dir: Path) -> Iterator[str]:
    """Machine A: ``reflex-buildd build --remote`` (a local hit here) pushes the artifact."""
    url = s3.url(f"fleet-{time.monotonic_ns()}")
    result = run_cli(
        "build", str(SHOWCASE), "--json", "--remote", url, cache_dir=cache_dir, **s3.env()
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["key"] == showcase_build.key
    assert data["push"]["manifest_written"] and data["push"]["blobs_sent"] > 0
    yield url


def test_machine_without_js_runtime_serves_the_remote_artifact_in_chromium(
    s3: Any,
    pushed: str,
    showcase_build: Built,
    browser: object,
    bare_python: Path,
    tmp_path: Path,
) -> None:
    check = subprocess.run(
        [
            str(bare_python),
            "-c",
            "import shutil,sys,pathlib;"
            "print(shutil.which('bun'), (pathlib.Path(sys.executable).parent/'bun').exists())",
        ],
        capture_output=True,
        text=True,
        env=_bare_env(bare_python, tmp_path),
        check=True,
    )
    assert check.stdout.split() == ["None", "False"], check.stdout

    cache_b = tmp_path / "cache-b"
    env = _bare_env(
        bare_python,
        tmp_path,
        **s3.env(),
        REFLEX_BUILDD_CACHE_DIR=str(cache_b),
        REFLEX_BUILDD_REMOTE=pushed,
        REFLEX_BUILDD_POLICY="fail",
        SHOWCASE_MOUNT_PATH="/admin",
    )
    host = _spawn(bare_python, tmp_path, env)
    try:
        wait_ready(host, timeout=90)
        check_showcase(browser, host.url, "/admin", tmp_path)
        # The same bytes as machine A's build: its local copy, and what it serves.
        a = Cache(showcase_build.path.parents[2]).open(showcase_build.key)
        b = Cache(cache_b).open(showcase_build.key)
        assert a is not None and b is not None and a.manifest == b.manifest
        for rel, entry in a.manifest.files.items():
            assert blake3.blake3((b.path / rel).read_bytes()).hexdigest() == entry.digest, rel
        # And both machines' hosts serve the same bytes under the same prefix:
        # pages (the prefix rewritten, the <meta> injected) and every asset.
        paths = ["/admin/", "/admin/about", "/admin/404.html"] + [
            "/admin/" + rel.removeprefix("public/")
            for rel in sorted(a.manifest.files)
            if rel.startswith("public/assets/") and not rel.endswith(".gz")
        ]
        with run_host(
            "examples.hosts.fastapi_host:app",
            cache_dir=showcase_build.path.parents[2],
            log_dir=tmp_path,
            SHOWCASE_MOUNT_PATH="/admin",
            REFLEX_UPLOADED_FILES_DIR=str(tmp_path / "uploads-a"),
            REFLEX_STATES_WORKDIR=str(tmp_path / "states-a"),
        ) as host_a:
            served = {
                name: {p: blake3.blake3(_get(h.url + p)).hexdigest() for p in paths}
                for name, h in (("a", host_a), ("b", host))
            }
        assert len(paths) > 10 and served["a"] == served["b"]
    finally:
        stop_process(host.process)
    events = [e["event"] for e in read_journal(Cache(cache_b))]
    assert "pulled" in events and "start" not in events, events
    assert not (cache_b / "v1" / "work").exists() or not any((cache_b / "v1" / "work").iterdir())


@pytest.mark.parametrize("case", ["unsigned-with-key", "unreachable"])
def test_host_refuses_or_falls_back_at_startup(
    s3: Any, pushed: str, bare_python: Path, tmp_path: Path, case: str
) -> None:
    extra = {"REFLEX_BUILDD_SIGNING_KEY": "h" * 32}
    if case == "unreachable":
        extra = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    env = _bare_env(
        bare_python,
        tmp_path,
        **{**s3.env(), **extra},
        REFLEX_BUILDD_CACHE_DIR=str(tmp_path / "cache-b"),
        REFLEX_BUILDD_REMOTE=pushed,
        REFLEX_BUILDD_REMOTE_TIMEOUT="3",
        REFLEX_BUILDD_POLICY="fail",
    )
    started = time.monotonic()
    host = _spawn(bare_python, tmp_path, env)
    try:
        host.process.wait(timeout=60)
    finally:
        stop_process(host.process)
    elapsed = time.monotonic() - started
    log = host.output()
    assert host.process.returncode != 0, log
    if case == "unsigned-with-key":
        assert "UntrustedArtifactError" in log and "unsigned" in log, log
    else:
        assert len(re.findall("remote cache unavailable", log)) == 1, log
        assert "ArtifactMissingError" in log and "startup policy is 'fail'" in log, log
        assert elapsed < 30, elapsed  # remote timeout 3 s, plus the host's own startup
    assert not (tmp_path / "cache-b" / "v1" / "artifacts").exists() or not any(
        (tmp_path / "cache-b" / "v1" / "artifacts").iterdir()
    )


def test_machine_without_js_runtime_starts_from_a_local_artifact(
    showcase_build: Built, cache_dir: Path, bare_python: Path, tmp_path: Path
) -> None:
    # No remote, no pin, no runtime: the key it computes is the builder's.
    env = _bare_env(
        bare_python,
        tmp_path,
        REFLEX_BUILDD_CACHE_DIR=str(cache_dir),
        REFLEX_BUILDD_POLICY="fail",
        SHOWCASE_MOUNT_PATH="/admin",
    )
    host = _spawn(bare_python, tmp_path, env)
    try:
        wait_ready(host, timeout=90)
        with urllib.request.urlopen(f"{host.url}/admin/", timeout=10) as resp:
            assert resp.status == 200 and b"Showcase" in resp.read()
        # It serves the builder's artifact: its lease is on that key.
        assert any(Cache(cache_dir).leases_dir(showcase_build.key).iterdir())
    finally:
        stop_process(host.process)
