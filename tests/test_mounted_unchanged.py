"""Mounted means unchanged (issue 13): fixture apps of our own, each reproducing a
pattern that breaks when a host runs elsewhere than the project, checked in
Chromium and over HTTP, in-process and in process mode.

Every host runs from the test's tmp_path, never from the project.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser_checks import TIMEOUT_MS, PageRecord, _record, check_showcase
from conftest import (
    Built,
    FixtureApp,
    Host,
    run_cli,
    run_host,
    spawn_host,
    stop_process,
    tool_env,
    wait_for,
    wait_ready,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@contextlib.contextmanager
def _host(app: FixtureApp, tmp_path: Path, mode: str, prefix: str = "/admin") -> Iterator[Host]:
    with run_host(
        "tests.hosts.project_host:app",
        cache_dir=app.cache,
        log_dir=tmp_path,
        MOUNT_PROJECT=str(app.project),
        MOUNT_PATH=prefix,
        REFLEX_BUILDD_BACKEND=mode,
        REFLEX_BUILDD_POLICY="fail",
    ) as host:
        yield host


def _json(url: str, method: str = "GET") -> Any:
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=20) as resp:
        return json.loads(resp.read())


def _assert_stayed_under(rec: PageRecord, base: str) -> None:
    allowed = (base + "/", base + "?")
    escaped = [u for u in rec.requests if not (u == base or u.startswith(allowed))]
    assert not escaped, f"requests outside {base}: {escaped}"
    ws_base = "ws" + base[len("http") :] + "/"
    assert rec.websockets and all(u.startswith(ws_base) for u in rec.websockets), rec.websockets
    # A favicon request at the origin root never reaches Playwright's request
    # events; the host's 404 for it shows up as a console error.
    assert not rec.console_errors, rec.console_errors
    assert not rec.failed, rec.failed


def _check_rows(browser: Any, base: str, tmp_path: Path, words: str) -> PageRecord:
    """The rows app end to end: every code path reaches the db of its own config."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    rec = _record(page)
    try:
        page.goto(base + "/")
        expect(page.locator("#title")).to_have_text("Rows")
        rows = page.locator("#rows")
        # on_load wrote a row through rxconfig's db_url.
        expect(rows).to_contain_text("on_load")
        page.locator("#add").click()
        expect(rows).to_contain_text("event")
        page.locator("#add-bg").click()
        expect(rows).to_contain_text("background")
        # So did the lifespan task: it runs beside the first page load (as under
        # `reflex run`), so its row shows once an event has read the rows again.
        expect(rows).to_contain_text("lifespan")
        # An API route of an APIRouter added with include_router, under the prefix.
        assert "api" in _json(base + "/products", "POST")["rows"]
        listed = _json(base + "/products")["rows"]
        assert {"lifespan", "on_load", "event", "background", "api"} <= set(listed), listed
        # FastAPI's own routes of the api_transformer app answer too.
        assert "/products" in _json(base + "/openapi.json")["paths"]
        # The config's env_file, relative to the project, was loaded.
        assert _json(base + "/env") == {"greeting": "hello from rows.env"}

        page.locator("#read-words").click()
        expect(page.locator("#words")).to_have_text(words)

        # Upload links built from the upload dir's relative parts resolve.
        payload = tmp_path / "hello.txt"
        payload.write_text("rows upload\n")
        page.locator("#uploader input[type=file]").set_input_files(str(payload))
        page.locator("#send").click()
        link = page.locator(".uploaded-link").first
        expect(link).to_have_text("hello.txt")
        href = link.get_attribute("href") or ""
        assert href.startswith(base + "/_upload/"), href
        with urllib.request.urlopen(href, timeout=10) as resp:
            assert resp.read() == payload.read_bytes()

        # No favicon.ico in the app: an empty icon, so the browser asks nobody.
        assert page.locator('link[rel="icon"]').get_attribute("href") == "data:,"
        _assert_stayed_under(rec, base)
    except Exception as exc:
        raise AssertionError(
            f"{exc}\nrequests: {rec.requests}\nconsole: {rec.console_errors}"
        ) from exc
    finally:
        context.close()
    return rec


def test_rows_app_in_process(browser: Any, rows_app: FixtureApp, tmp_path: Path) -> None:
    with _host(rows_app, tmp_path, "inprocess") as host:
        # In-process, relative paths resolve against the host's directory, as
        # documented (and logged once at startup); the db_url is absolute.
        _check_rows(browser, host.url + "/admin", tmp_path, "error: FileNotFoundError")
        log = host.output()
    assert "relative paths resolve there" in log, log
    assert str(tmp_path) in log
    assert (tmp_path / "uploaded_files" / "hello.txt").exists()


def test_rows_app_process_mode(browser: Any, rows_app: FixtureApp, tmp_path: Path) -> None:
    with _host(rows_app, tmp_path, "process") as host:
        base = host.url + "/admin"
        # As under `reflex run`: the project is the working directory.
        _check_rows(browser, base, tmp_path, "alpha beta gamma")
        assert (rows_app.project / "uploaded_files" / "hello.txt").exists()
        _check_forwarding(host.url, base)
        log = host.output()
    assert "relative paths resolve there" not in log, log


def _check_forwarding(origin: str, base: str) -> None:
    """Streaming, headers, cookies and websocket close codes pass through unchanged."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    # A large streamed response arrives whole, byte for byte.
    with urllib.request.urlopen(base + "/products/stream?chunks=96&size=65536", timeout=60) as r:
        body = r.read()
        assert r.headers.get("content-type") == "application/octet-stream"
    assert body == b"".join(bytes([65 + i % 26]) * 65536 for i in range(96))

    # A large request body streams to the backend whole (chunked, no length).
    payload = os.urandom(12 * 1024 * 1024)
    chunks = (payload[i : i + 65536] for i in range(0, len(payload), 65536))
    request = urllib.request.Request(base + "/digest", data=chunks, method="POST")
    with urllib.request.urlopen(request, timeout=60) as resp:
        assert json.loads(resp.read()) == {
            "size": len(payload),
            "sha256": hashlib.sha256(payload).hexdigest(),
        }

    # The client's address, scheme, host and cookies; two Set-Cookie headers.
    request = urllib.request.Request(base + "/whoami", headers={"Cookie": "a=1; b=2"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        seen = json.loads(resp.read())
        cookies = resp.headers.get_all("set-cookie")
    assert seen == {
        "client": "127.0.0.1",
        "scheme": "http",
        "host": origin.removeprefix("http://"),
        "cookie": "a=1; b=2",
    }, seen
    assert sorted(c.split(";")[0] for c in cookies) == ["first=1", "second=2"], cookies

    # Websocket frames both ways, and the backend's close code and reason.
    ws_url = "ws" + base[len("http") :] + "/echo"
    with connect(ws_url, open_timeout=10, close_timeout=10) as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "hello"
        ws.send("close:4001:bye now")
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        assert ws.close_code == 4001 and ws.close_reason == "bye now"


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_process_mode_child_killed_and_host_killed(
    browser: Any, rows_app: FixtureApp, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    host = spawn_host(
        "tests.hosts.project_host:app",
        cache_dir=rows_app.cache,
        log_dir=tmp_path,
        MOUNT_PROJECT=str(rows_app.project),
        REFLEX_BUILDD_BACKEND="process",
        REFLEX_BUILDD_POLICY="fail",
    )
    try:
        wait_ready(host, "/admin/ping")  # the backend's own route: the child answers
        base = host.url + "/admin"
        (child,) = _children(host.process.pid)
        context = browser.new_context()
        try:
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(base + "/")
            events = page.locator("#rows li", has_text="event")
            expect(page.locator("#rows")).to_contain_text("on_load", timeout=TIMEOUT_MS)
            before = events.count()
            page.locator("#add").click()
            expect(events).to_have_count(before + 1, timeout=TIMEOUT_MS)

            os.kill(child, signal.SIGKILL)
            wait_for(
                lambda: "exited with signal SIGKILL; restarting" in host.output(),
                timeout=20,
                what="the host to log the child's death",
            )
            new_child = wait_for(
                lambda: [c for c in _children(host.process.pid) if c != child],
                timeout=60,
                what="a new backend child",
            )[0]
            # The page reconnects by itself and its next event works.
            wait_for(
                lambda: _status(base + "/ping") == 200, timeout=60, what="the new child to answer"
            )
            page.locator("#add").click()
            expect(events).to_have_count(before + 2, timeout=30_000)
        finally:
            context.close()

        # The child never outlives the host, even one killed with SIGKILL.
        host.process.kill()
        host.process.wait(timeout=10)
        wait_for(lambda: not _alive(new_child), timeout=10, what="the child to die with the host")
    finally:
        stop_process(host.process)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status)
    except OSError:
        return 0


@pytest.mark.parametrize(("prefix", "mode"), [("/admin", "inprocess"), ("/a/b", "process")])
def test_local_jsx_component(
    prefix: str, mode: str, browser: Any, jsx_app: FixtureApp, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    with _host(jsx_app, tmp_path, mode, prefix) as host:
        base = host.url + prefix
        context = browser.new_context()
        try:
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            rec = _record(page)
            page.goto(base + "/")
            expect(page.locator("#hello")).to_have_text("Hello from JSX, world", timeout=TIMEOUT_MS)
            page.locator("#rename").click()
            expect(page.locator("#hello")).to_have_text(
                "Hello from JSX, prefix", timeout=TIMEOUT_MS
            )
            _assert_stayed_under(rec, base)
        finally:
            context.close()
    # The backend runs backend-only: it linked nothing into the host's directory.
    assert not (tmp_path / "assets").exists()


def test_shared_asset_links_do_not_change_the_key(jsx_app: FixtureApp) -> None:
    """Importing the app in its project (as `reflex run` or an editor's Reflex
    does) links its shared assets under assets/external/; the key, and so the
    daemon's decision to build, does not see them."""
    subprocess.run(
        [sys.executable, "-c", "import jsx_app.jsx_app"],
        cwd=jsx_app.project,
        env=tool_env(),
        check=True,
        timeout=120,
        capture_output=True,
    )
    assert any((jsx_app.project / "assets" / "external").rglob("hello.jsx"))
    result = run_cli("key", str(jsx_app.project), cache_dir=jsx_app.cache)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == jsx_app.key, result.stdout


def test_two_projects_in_one_host(
    browser: Any,
    showcase_build: Built,
    cache_dir: Path,
    second_app_copy: FixtureApp,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    with run_host(
        "tests.hosts.two_apps_host:app",
        cache_dir=cache_dir,
        log_dir=tmp_path,
        SECOND_PROJECT=str(second_app_copy.project),
        SECOND_CACHE_DIR=str(second_app_copy.cache),
        REFLEX_BUILDD_POLICY="fail",
        SHOWCASE_LIFESPAN_LOG=str(tmp_path / "lifespan.log"),
    ) as host:
        check_showcase(browser, host.url, "/admin", tmp_path)
        base = host.url + "/reports"
        context = browser.new_context()
        try:
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            rec = _record(page)
            page.goto(base + "/")
            expect(page.locator("#title")).to_have_text("Second", timeout=TIMEOUT_MS)
            expect(page.locator("#second-lifespan")).to_have_text(
                "second lifespan running", timeout=TIMEOUT_MS
            )
            page.locator("#bump").click()
            page.locator("#bump").click()
            expect(page.locator("#value")).to_have_text("2", timeout=TIMEOUT_MS)
            _assert_stayed_under(rec, base)
        finally:
            context.close()
    # The in-process app's lifespan ran and stopped with the host's.
    assert (tmp_path / "lifespan.log").read_text().split() == ["started", "stopped"]


def _backend_children(root: int) -> list[tuple[int, int]]:
    """(pid, parent pid) of the backend children below ``root``."""
    found = []
    stack = [root]
    while stack:
        pid = stack.pop()
        for child in _children(pid):
            stack.append(child)
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
                if b"reflex_buildd_client.backend.child" in cmdline and _alive(child):
                    found.append((child, pid))
    return found


def test_process_mode_one_child_for_all_workers(rows_app: FixtureApp, tmp_path: Path) -> None:
    """Two uvicorn workers share one backend child; when its owner dies, another takes over."""
    with run_host(
        "tests.hosts.project_host:app",
        cache_dir=rows_app.cache,
        log_dir=tmp_path,
        extra_args=("--workers", "2"),
        MOUNT_PROJECT=str(rows_app.project),
        REFLEX_BUILDD_BACKEND="process",
        REFLEX_BUILDD_POLICY="fail",
    ) as host:
        base = host.url + "/admin"
        wait_for(
            lambda: len(_children(host.process.pid)) >= 2, timeout=60, what="two uvicorn workers"
        )
        for _ in range(8):  # new connections, spread over the workers
            assert "rows" in _json(base + "/products")
        ((child, owner),) = _backend_children(host.process.pid)
        # The owning worker dies: its child dies with it, the other worker
        # (or the worker uvicorn starts in its place) starts a new one.
        os.kill(owner, signal.SIGKILL)
        wait_for(lambda: not _alive(child), timeout=10, what="the child to die with its owner")
        (new_child, _) = wait_for(
            lambda: _backend_children(host.process.pid), timeout=60, what="a new child"
        )[0]
        assert new_child != child
        wait_for(lambda: _status(base + "/ping") == 200, timeout=60, what="the backend again")
        assert len(_backend_children(host.process.pid)) == 1


def test_process_mode_backend_that_cannot_start_fails_startup(
    rows_app: FixtureApp, tmp_path: Path
) -> None:
    """A child that dies before it ever answers fails the host's startup with its
    exit status (and its traceback above), instead of restarting until a timeout."""
    host = spawn_host(
        "tests.hosts.project_host:app",
        cache_dir=rows_app.cache,
        log_dir=tmp_path,
        MOUNT_PROJECT=str(rows_app.project),
        REFLEX_BUILDD_BACKEND="process",
        REFLEX_BUILDD_POLICY="fail",
        # The mode in which a backend that cannot start fails the host's startup.
        REFLEX_BUILDD_BACKEND_START="startup",
        ROWS_FAIL_AT_IMPORT="1",
    )
    try:
        host.process.wait(timeout=90)
    finally:
        stop_process(host.process)
    output = host.output()
    assert host.process.returncode != 0, output
    assert "Application startup failed" in output, output
    assert "exited with status 1 before it answered" in output, output
    assert "rows_app refuses to start" in output, output


def test_process_backend_routing_questions(rows_app: FixtureApp, tmp_path: Path) -> None:
    """The host asks the child's router: the static files at startup in one
    request, other paths once each."""
    import asyncio

    from reflex_buildd_client import ReflexMount

    async def scenario() -> None:
        reflex_mount = ReflexMount(
            rows_app.project, cache_dir=rows_app.cache, backend="process", policy="fail"
        )
        await reflex_mount.startup()
        try:
            assert await reflex_mount.ready()
            backend = reflex_mount._backend
            assert backend is not None
            assert backend.owns("", "GET") is False  # the index page: prewarmed
            assert backend.owns("/favicon.ico", "GET") is None  # not a file of this app
            assets = [
                "/" + name.removeprefix("public/")
                for name in reflex_mount.artifact.manifest.files  # type: ignore[union-attr]
                if name.startswith("public/assets/")
            ]
            assert assets and all(backend.owns(a, "GET") is False for a in assets)
            assert backend.owns("/products", "GET") is None
            assert await backend.ask("/products", "GET") is True
            assert backend.owns("/products", "GET") is True  # remembered
            assert await backend.ask("/about", "GET") is False
        finally:
            await reflex_mount.shutdown()

    # Its own thread: the session's Playwright keeps an event loop in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(asyncio.wait_for(scenario(), timeout=120))).result(150)
