"""Each documented host, end to end: the full Chromium check at /admin, the host's
own routes and lifespan (or startup hook), and Reflex's lifespan stopping with it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from browser_checks import check_showcase
from conftest import SERVERS, Built, run_host, spawn_host, stop_process, wait_for, wait_ready

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HOSTS = {
    "fastapi": "examples.hosts.fastapi_host:app",
    "starlette": "examples.hosts.starlette_host:app",
    "litestar": "examples.hosts.litestar_host:app",
    "django": "examples.hosts.django_host.asgi:application",
}


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        # The session's build must be found, not redone.
        "REFLEX_BUILDD_POLICY": "fail",
        "REFLEX_UPLOADED_FILES_DIR": str(tmp_path / "uploads"),
        "REFLEX_STATES_WORKDIR": str(tmp_path / "states"),
        "SHOWCASE_LIFESPAN_LOG": str(tmp_path / "lifespan.log"),
        **extra,
    }


# Every host in-process under uvicorn; the two that are not Starlette
# (PathDispatcher, restore_mount_path) in process mode too. Under granian, one
# of each kind of mount: FastAPI's (mount() wraps the host's lifespan), Django's
# (the PathDispatcher answers the lifespan Django's handler refuses) and
# Litestar's in process mode (a raw ASGI mount, a backend child).
@pytest.mark.parametrize(
    ("name", "backend", "server"),
    [(name, "inprocess", "uvicorn") for name in HOSTS]
    + [("django", "process", "uvicorn"), ("litestar", "process", "uvicorn")]
    + [
        ("fastapi", "inprocess", "granian"),
        ("django", "inprocess", "granian"),
        ("litestar", "process", "granian"),
    ],
)
def test_host(
    name: str,
    backend: str,
    server: str,
    browser: object,
    showcase_build: Built,
    cache_dir: Path,
    tmp_path: Path,
) -> None:
    host = spawn_host(
        HOSTS[name],
        cache_dir=cache_dir,
        log_dir=tmp_path,
        server=server,
        **_env(tmp_path, REFLEX_BUILDD_BACKEND=backend),
    )
    try:
        wait_ready(host, "/health")
        check_showcase(browser, host.url, "/admin", tmp_path)

        # The host's own startup (lifespan or hook) ran, and its routes answer
        # beside the mount: /health, its own /assets and /static, a catch-all.
        status, body = _get(host.url + "/health")
        assert status == 200 and "host startup" in json.loads(body)["events"]
        for path in ("/assets/host.txt", "/static/host.txt"):
            status, body = _get(host.url + path)
            assert status == 200 and json.loads(body)["name"] == "host.txt", (path, body)
        status, body = _get(host.url + "/elsewhere/x")
        assert status == 404 and json.loads(body)["host"] == "catch-all"
        # The bare mount path leads into the app.
        status, body = _get(host.url + "/admin")
        assert status == 200 and b'name="reflex-buildd"' in body
        # The access log names the full path of requests under the mount.
        assert _get(host.url + "/admin/about")[0] == 200
        wait_for(
            lambda: '"GET /admin/about HTTP/1.1" 200' in host.output(),
            timeout=10,
            what="the access log line",
        )
        assert '"GET /about' not in host.output(), host.output()
    finally:
        stop_process(host.process)
    # Stopping the host stopped Reflex's lifespan tasks.
    log = (tmp_path / "lifespan.log").read_text().split()
    assert log == ["started", "stopped"], (log, host.output())


@pytest.mark.parametrize("backend", ["inprocess", "process"])
def test_host_middleware_guards_the_mount(
    backend: str, browser: object, showcase_build: Built, cache_dir: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    with run_host(
        "examples.hosts.auth_host:app",
        cache_dir=cache_dir,
        log_dir=tmp_path,
        **_env(tmp_path, REFLEX_BUILDD_BACKEND=backend),
    ) as host:
        # Unauthenticated: the page and an asset are refused ...
        assert _get(host.url + "/admin/")[0] == 401
        assert _get(host.url + "/admin/favicon.ico")[0] == 401
        context = browser.new_context()  # type: ignore[attr-defined]
        try:
            page = context.new_page()
            response = page.goto(host.url + "/admin/")
            assert response is not None and response.status == 401
            # ... and so is the websocket, even from a page of the same origin.
            closed = page.evaluate(
                """(url) => new Promise((resolve) => {
                    const ws = new WebSocket(url);
                    ws.onopen = () => resolve("open");
                    ws.onclose = () => resolve("closed");
                    setTimeout(() => resolve("timeout"), 10000);
                })""",
                host.url.replace("http", "ws") + "/admin/_event/?EIO=4&transport=websocket",
            )
            assert closed == "closed"
        finally:
            context.close()

        # Authenticated: everything works, websocket included.
        context = browser.new_context()  # type: ignore[attr-defined]
        try:
            context.add_cookies([{"name": "session", "value": "letmein", "url": host.url}])
            page = context.new_page()
            page.goto(host.url + "/admin/")
            expect(page.locator("#lifespan")).to_have_text("lifespan running", timeout=20_000)
            page.locator("#increment").click()
            expect(page.locator("#count")).to_have_text("1", timeout=20_000)
        finally:
            context.close()


def test_host_shutdown_without_requests_stops_reflex(
    showcase_build: Built, cache_dir: Path, tmp_path: Path
) -> None:
    host = spawn_host(HOSTS["fastapi"], cache_dir=cache_dir, log_dir=tmp_path, **_env(tmp_path))
    try:
        wait_ready(host)
        wait_for(lambda: (tmp_path / "lifespan.log").exists(), timeout=10, what="the lifespan task")
    finally:
        stop_process(host.process)
    assert (tmp_path / "lifespan.log").read_text().split() == ["started", "stopped"]
    assert "Application shutdown complete" in host.output()


@pytest.mark.parametrize("server", SERVERS)
def test_reflex_mount_as_the_whole_app(
    server: str, showcase_build: Built, cache_dir: Path, tmp_path: Path
) -> None:
    """The server speaks the lifespan protocol to ReflexMount itself."""
    host = spawn_host(
        "examples.hosts.raw_asgi:app",
        cache_dir=cache_dir,
        log_dir=tmp_path,
        server=server,
        **_env(tmp_path),
    )
    try:
        wait_ready(host, "/ping")
        status, body = _get(host.url + "/")
        assert status == 200 and b'data-prefix=""' in body
        assert _get(host.url + "/post/7")[0] == 200
        assert _get(host.url + "/no/such/page")[0] == 404
    finally:
        stop_process(host.process)
    assert (tmp_path / "lifespan.log").read_text().split() == ["started", "stopped"]


@pytest.mark.parametrize(("server", "status"), [("uvicorn", 3), ("granian", 1)])
def test_a_startup_that_fails_stops_the_server(server: str, status: int, tmp_path: Path) -> None:
    """No artifact and policy fail: the lifespan fails, and the server exits with its status."""
    host = spawn_host(
        HOSTS["fastapi"],
        cache_dir=tmp_path / "empty-cache",
        log_dir=tmp_path,
        server=server,
        **_env(tmp_path),
    )
    try:
        assert host.process.wait(timeout=60) == status, host.output()
    finally:
        stop_process(host.process)
    assert "startup policy is 'fail'" in host.output()
    assert "reflex-buildd build" in host.output()  # the command that builds it
