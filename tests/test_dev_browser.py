"""``reflex-buildd dev`` end to end: real processes, real edits, Chromium.

The showcase (a copy in tmp_path: the project lives outside the host's
directory) is mounted at /admin of the FastAPI example host, which has routes
of its own. One session of the dev command; on the open page:

- a change to a page's text in the Python source shows up without a reload
  (Vite's HMR, proxied under the prefix);
- a change to an event handler's body is used by the next click (the backend
  reloaded);
- a syntax error is printed in the terminal, the page and the host keep
  answering, and fixing it recovers both;
- the host's own route answers throughout; every request and websocket of the
  page (HMR included) stays under the prefix; no artifact is written.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
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

from conftest import REPO, SHOWCASE, free_port, stop_process, tool_env, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 30_000
_READY = re.compile(r"reflex-buildd dev: \S+ at (http://\S+)/ ")


@dataclass
class DevSession:
    url: str  # the app's URL: origin + prefix, no trailing slash
    origin: str
    process: subprocess.Popen[bytes]
    log: Path
    project: Path
    cache: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def dev_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One project copy and cache for this module's sessions, one after the other:
    the dev workspace (its node_modules) is installed once."""
    home = tmp_path_factory.mktemp("dev")
    shutil.copytree(SHOWCASE, home / "elsewhere" / "showcase")
    return home


@contextlib.contextmanager
def run_dev(home: Path, tmp_path: Path, app: str) -> Iterator[DevSession]:
    """``reflex-buildd dev`` on the showcase copy in ``home``, mounted at /admin of ``app``."""
    project = home / "elsewhere" / "showcase"
    page = Path("showcase") / "showcase.py"
    shutil.copyfile(SHOWCASE / page, project / page)  # undo the last test's edits
    port = free_port()
    log = tmp_path / "dev.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reflex_buildd",
                "dev",
                str(project),
                "--app",
                app,
                "--path",
                "/admin",
                "--port",
                str(port),
                "--app-dir",
                str(REPO),
                "--cache-dir",
                str(home / "cache"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            # Neither the project nor the host's directory.
            cwd=tmp_path,
            env=tool_env(
                SHOWCASE_PROJECT=str(project),
                SHOWCASE_MOUNT_PATH="/admin",
                REFLEX_UPLOADED_FILES_DIR=str(tmp_path / "uploads"),
                REFLEX_STATES_WORKDIR=str(tmp_path / "states"),
            ),
        )
    session = DevSession("", f"http://127.0.0.1:{port}", process, log, project, home / "cache")
    try:

        def ready() -> str | None:
            if process.poll() is not None:
                raise RuntimeError(f"dev exited with {process.returncode}:\n{session.output()}")
            match = _READY.search(session.output())
            return match.group(1) if match else None

        session.url = wait_for(ready, timeout=300, what="the dev session", interval=0.2)
        yield session
    finally:
        stop_process(process)


@pytest.fixture
def dev_session(dev_home: Path, tmp_path: Path) -> Iterator[DevSession]:
    with run_dev(dev_home, tmp_path, "examples.hosts.fastapi_host:app") as session:
        yield session


def _assert_stopped(session: DevSession) -> None:
    """Vite and the Reflex backend are gone with the command."""
    inner = [int(p) for p in re.findall(r"on http://127\.0\.0\.1:(\d+)", session.output())]
    assert len(inner) == 2, session.output()
    for port in inner:
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _host_answers(session: DevSession) -> None:
    status, body = _get(session.origin + "/health")
    assert status == 200 and b"host startup" in body, (status, body)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def _click_until_step(page: Any, step: int, timeout: float) -> None:
    """Click #increment until one click adds ``step`` (the backend may be reloading)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    deadline = time.monotonic() + timeout
    while True:
        before = int(page.locator("#count").inner_text())
        page.locator("#increment").click()
        try:
            page.wait_for_function(
                f"document.querySelector('#count').textContent !== '{before}'", timeout=3000
            )
        except PlaywrightTimeout:
            pass  # the click hit a reconnecting socket: click again
        after = int(page.locator("#count").inner_text())
        if after - before == step:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"no click added {step} within {timeout}s ({before} -> {after})")


def test_dev_hot_reload_under_prefix(dev_session: DevSession, browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    session = dev_session
    project = session.project
    source = project / "showcase" / "showcase.py"
    base = session.url
    assert base == session.origin + "/admin", base
    _host_answers(session)

    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    requests: list[str] = []
    sockets: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("websocket", lambda ws: sockets.append(ws.url))
    try:
        page.goto(base + "/")
        expect(page.locator("#title")).to_have_text("Showcase")
        expect(page.locator("#lifespan")).to_have_text("lifespan running")
        assert page.locator("link[rel=icon]").get_attribute("href") == "/admin/favicon.ico"
        _click_until_step(page, 1, timeout=30)
        # Survives HMR; a page reload would drop it.
        page.evaluate("window.__devMarker = 'still here'")

        # 1. Text in a page: the open page changes by itself.
        _edit(source, 'rx.heading("Showcase", id="title")', 'rx.heading("Edited", id="title")')
        expect(page.locator("#title")).to_have_text("Edited")
        assert page.evaluate("window.__devMarker") == "still here", "the page was reloaded"
        _host_answers(session)

        # 2. An event handler's body: the next click runs the new code.
        _edit(source, "self.count += 1", "self.count += 10")
        _click_until_step(page, 10, timeout=60)
        assert page.evaluate("window.__devMarker") == "still here", "the page was reloaded"
        _host_answers(session)

        # 3. A syntax error: the terminal shows it; the page and the host still answer.
        broken = source.read_text()
        source.write_text(broken.replace("def nav() -> rx.Component:", "def nav( -> rx.Component:"))
        wait_for(lambda: "SyntaxError" in session.output(), timeout=60, what="the SyntaxError")
        assert "showcase.py" in session.output()
        status, body = _get(base + "/")
        assert status == 200 and b"<html" in body, status
        _host_answers(session)
        # Reflex's own banner says the backend is unreachable, as under `reflex run`.
        expect(page.get_by_text("Cannot connect to server")).to_be_visible()
        expect(page.locator("#title")).to_have_text("Edited")

        # 4. Fixed (with one more text change): the page and the backend recover.
        source.write_text(broken.replace('"Edited"', '"Fixed"'))
        expect(page.locator("#title")).to_have_text("Fixed")
        expect(page.get_by_text("Cannot connect to server")).to_have_count(0)
        _click_until_step(page, 10, timeout=60)
        assert page.evaluate("window.__devMarker") == "still here", "the page was reloaded"
        _host_answers(session)
    finally:
        context.close()

    # Nothing escaped the prefix: documents, modules, styles, the event
    # websocket and Vite's HMR websocket.
    escaped = [u for u in requests if not (u == base or u.startswith(base + "/"))]
    assert not escaped, escaped
    ws_base = "ws" + base[len("http") :]
    assert sockets and all(u.startswith(ws_base + "/") for u in sockets), sockets
    assert any(u.startswith(ws_base + "/_event") for u in sockets), sockets
    assert any(u.startswith(ws_base + "/?token=") for u in sockets), sockets  # HMR
    # Dev never writes artifacts; its .web is in the cache's dev workspace.
    assert not (session.cache / "v1" / "artifacts").exists()
    assert not (project / ".web").exists()
    # Reflex's lockfiles (a build input) went to the dev workspace, not the project.
    assert not (project / "reflex.lock").exists()
    assert list(session.cache.glob("v1/dev/*/reflex.lock/bun.lock"))

    # Ctrl-C (SIGINT) stops the host and the Reflex side; exit code 0.
    session.process.send_signal(signal.SIGINT)
    assert session.process.wait(timeout=30) == 0, session.output()
    _assert_stopped(session)


@pytest.mark.parametrize(
    "app", ["examples.hosts.litestar_host:app", "examples.hosts.django_host.asgi:application"]
)
def test_dev_on_raw_asgi_hosts(app: str, browser: Any, dev_home: Path, tmp_path: Path) -> None:
    """Litestar (restore_mount_path) and Django (PathDispatcher) take the dev path too."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    with run_dev(dev_home, tmp_path, app) as session:
        source = session.project / "showcase" / "showcase.py"
        base = session.url
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        requests: list[str] = []
        sockets: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.on("websocket", lambda ws: sockets.append(ws.url))
        try:
            page.goto(base + "/")
            expect(page.locator("#lifespan")).to_have_text("lifespan running")
            page.evaluate("window.__devMarker = 'still here'")
            _edit(source, 'rx.heading("Showcase", id="title")', 'rx.heading("Edited", id="title")')
            expect(page.locator("#title")).to_have_text("Edited")
            assert page.evaluate("window.__devMarker") == "still here", "the page was reloaded"
            _click_until_step(page, 1, timeout=30)
            _host_answers(session)
        finally:
            context.close()
    # Left by SIGTERM (stop_process): a clean stop too.
    assert session.process.returncode == 0, session.output()
    _assert_stopped(session)
    escaped = [u for u in requests if not (u == base or u.startswith(base + "/"))]
    assert not escaped, escaped
    ws_base = "ws" + base[len("http") :]
    assert sockets and all(u.startswith(ws_base + "/") for u in sockets), sockets


def _get_as(url: str, host: str) -> int:
    request = urllib.request.Request(url, headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_dev_proxy_keeps_vites_host_check(dev_home: Path, tmp_path: Path) -> None:
    """A foreign Host (DNS rebinding) gets Vite's own 403 through the host, not the files."""
    with run_dev(dev_home, tmp_path, "examples.hosts.fastapi_host:app") as session:
        (web,) = session.cache.glob("v1/dev/*/web")
        paths = ["/@vite/client", "/env.json", f"/@fs{web}/package.json?raw"]
        port = session.origin.rsplit(":", 1)[1]
        for path in paths:
            for ours in (f"127.0.0.1:{port}", f"localhost:{port}"):
                assert _get_as(session.url + path, ours) == 200, (path, ours)
            for foreign in ("evil.com", f"evil.com:{port}", "rebind.attacker.example"):
                assert _get_as(session.url + path, foreign) == 403, (path, foreign)
        # The host's own routes and the page itself still answer the browser.
        _host_answers(session)
        assert _get_as(session.url + "/", f"127.0.0.1:{port}") == 200
