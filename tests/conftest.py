"""Shared fixtures: one real build per session, real hosts, one real browser.

Everything here is real: ``reflex-buildd build`` runs Reflex's own export with
bun from the npm registry, hosts are uvicorn (or granian) processes on 127.0.0.1 and a free
port, and pages are driven in the Debian Chromium through Playwright.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SHOWCASE = REPO / "examples" / "showcase"
CHROMIUM = os.environ.get("REFLEX_BUILDD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium keeps trying to reach Google's hosts, which this
    # network refuses.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def tool_env(**extra: str) -> dict[str, str]:
    """The environment for subprocesses: the venv and bun on PATH."""
    env = dict(os.environ)
    # The venv's bin holds bun (scripts/setup.sh links it there).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env.setdefault("REFLEX_TELEMETRY_ENABLED", "false")
    # Hosts import the example from the repository: keep its tree clean.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def run_cli(
    *args: str, cache_dir: Path, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``reflex-buildd ARGS`` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "reflex_buildd", *args, "--cache-dir", str(cache_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=tool_env(**env),
        cwd=REPO,
        check=False,
    )


def run_in_own_loop(coro: Any, timeout: float = 300) -> Any:
    """``asyncio.run(coro)`` in a thread of its own.

    The session's browser (Playwright's sync API) keeps an event loop running in the main
    thread, where ``asyncio.run()`` refuses to start: a test that drives asyncio itself
    passes alone and fails after any browser test. In a thread it works either way.
    """
    import asyncio
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result(timeout=timeout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The ASGI servers a host runs under (docs/howto-*.md show both).
SERVERS = ("uvicorn", "granian")


def server_command(server: str, app: str, port: int, extra_args: tuple[str, ...] = ()) -> list[str]:
    """The command line that serves ``app`` on 127.0.0.1:``port`` under ``server``.

    granian runs with ``--interface asgi`` (it then speaks the lifespan
    protocol, which the mount needs) and its access log on, so tests can read
    the paths it served as they read uvicorn's.
    """
    if server == "uvicorn":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *extra_args,
        ]
    if server == "granian":
        granian = str(Path(sys.executable).parent / "granian")
        return [
            granian,
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--access-log",
            *extra_args,
            app,
        ]
    raise ValueError(f"unknown server {server!r}")


@dataclass
class Host:
    """A running host process (uvicorn or granian)."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def spawn_host(
    app: str,
    *,
    cache_dir: Path,
    log_dir: Path,
    extra_args: tuple[str, ...] = (),
    server: str = "uvicorn",
    **env: str,
) -> Host:
    """Start ``APP`` under ``server`` (uvicorn or granian) on a free port, without waiting.

    The host runs from ``log_dir``, not from the project, to prove that
    nothing depends on the host's working directory.
    """
    port = free_port()
    log = log_dir / f"host-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            server_command(server, app, port, extra_args),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log_dir,
            env=tool_env(REFLEX_BUILDD_CACHE_DIR=str(cache_dir), **env),
        )
    return Host(f"http://127.0.0.1:{port}", process, log)


def wait_ready(host: Host, path: str = "/health", timeout: float = 90) -> None:
    """Poll ``path`` until it answers 200; fail with the host's log otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        if host.process.poll() is not None:
            raise RuntimeError(f"host exited with {host.process.returncode}:\n{host.output()}")
        try:
            with urllib.request.urlopen(host.url + path, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"host not ready in {timeout}s:\n{host.output()}")
        time.sleep(0.2)


def wait_listening(port: int, process: subprocess.Popen[Any], *, timeout: float, what: str) -> None:
    """Wait until something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not listening in {timeout}s")
        time.sleep(0.1)


def stop_process(process: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL after 15 s; always reaps."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait(timeout=10)


@contextlib.contextmanager
def run_host(
    app: str,
    *,
    cache_dir: Path,
    log_dir: Path,
    ready_path: str = "/health",
    timeout: float = 90,
    extra_args: tuple[str, ...] = (),
    server: str = "uvicorn",
    **env: str,
) -> Iterator[Host]:
    """Start a host, wait until it serves, and stop it (and wait) on exit."""
    host = spawn_host(
        app, cache_dir=cache_dir, log_dir=log_dir, extra_args=extra_args, server=server, **env
    )
    try:
        wait_ready(host, ready_path, timeout)
        yield host
    finally:
        stop_process(host.process)


@contextlib.contextmanager
def run_daemon(
    project: Path, *, cache_dir: Path, log: Path, **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``reflex-buildd watch PROJECT`` in the background; SIGTERM on exit."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reflex_buildd",
                "watch",
                str(project),
                "--cache-dir",
                str(cache_dir),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=tool_env(**env),
            cwd=log.parent,
        )
    try:
        yield process
    finally:
        stop_process(process)


def wait_for(predicate: Any, *, timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the session, so each example is built once."""
    return tmp_path_factory.mktemp("cache")


@dataclass(frozen=True)
class Built:
    key: str
    path: Path


@pytest.fixture(scope="session")
def showcase_build(cache_dir: Path) -> Built:
    """The showcase example, built once per session with the real CLI."""
    result = run_cli("build", str(SHOWCASE), "--json", cache_dir=cache_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    return Built(key=data["key"], path=Path(data["path"]))


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Chromium for the whole session (Debian's, not a download)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.fail(f"Chromium not found at {CHROMIUM}: run scripts/setup.sh", pytrace=False)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real S3 API (moto's server on 127.0.0.1) for the session; stopped at the end."""
    from s3server import s3_server

    with s3_server(log=tmp_path_factory.mktemp("s3") / "moto.log") as server:
        yield server


FIXTURES = REPO / "tests" / "fixtures"


@dataclass(frozen=True)
class FixtureApp:
    """A copy of an app of tests/fixtures, built once per session into ``cache``."""

    project: Path
    key: str
    cache: Path


@pytest.fixture(scope="session")
def apps_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cache of the fixture apps (the shared one holds only the showcase)."""
    return tmp_path_factory.mktemp("apps-cache")


def build_fixture_app(name: str, cache: Path, into: Path) -> FixtureApp:
    """Copy ``tests/fixtures/NAME`` to ``into`` (apps write beside themselves) and build it."""
    project = into / name
    shutil.copytree(FIXTURES / name, project, ignore=shutil.ignore_patterns("__pycache__"))
    result = run_cli("build", str(project), "--json", cache_dir=cache)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    return FixtureApp(project=project, key=data["key"], cache=cache)


@pytest.fixture(scope="session")
def rows_app(apps_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> FixtureApp:
    """tests/fixtures/rows_app: db_url, included router, relative files, uploads."""
    return build_fixture_app("rows_app", apps_cache, tmp_path_factory.mktemp("rows"))


@pytest.fixture(scope="session")
def jsx_app(apps_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> FixtureApp:
    """tests/fixtures/jsx_app: a local JSX component shipped as a shared asset."""
    return build_fixture_app("jsx_app", apps_cache, tmp_path_factory.mktemp("jsx"))


@pytest.fixture(scope="session")
def second_app_copy(apps_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> FixtureApp:
    """tests/fixtures/second_app/project, as a second project beside the showcase."""
    into = tmp_path_factory.mktemp("second")
    project = into / "second_app"
    shutil.copytree(
        FIXTURES / "second_app" / "project", project, ignore=shutil.ignore_patterns("__pycache__")
    )
    result = run_cli("build", str(project), "--json", cache_dir=apps_cache)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    return FixtureApp(project=project, key=data["key"], cache=apps_cache)
