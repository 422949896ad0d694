"""The problem we solve, documented in code: plain Reflex under /admin breaks.

The app is exported the normal way and its ASGI app mounted in Starlette the
obvious way, with Reflex serving its own compiled frontend. In Chromium the
page's assets are requested at the host's root (``/assets/...``), the
websocket goes to the baked-in ``ws://localhost:8000/_event``, and a click on
the counter never comes back.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SHOWCASE, run_host, tool_env
from reflex_buildd_client.inputs.runtime import resolve_runtime
from reflex_buildd_client.settings import Settings

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_plain_reflex_mounted_under_admin_fails(browser: object, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    project = tmp_path / "showcase"
    shutil.copytree(SHOWCASE, project, ignore=shutil.ignore_patterns("__pycache__"))
    web = tmp_path / "web"
    env = tool_env(REFLEX_WEB_WORKDIR=str(web), **resolve_runtime(settings=Settings.load()).env)
    export = subprocess.run(
        [sys.executable, "-m", "reflex", "export", "--frontend-only", "--no-zip"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert export.returncode == 0, export.stdout[-3000:]

    with run_host(
        "plain_host:app",
        cache_dir=tmp_path / "unused-cache",
        log_dir=tmp_path,
        PYTHONPATH=str(Path(__file__).parent / "hosts"),
        PLAIN_PROJECT=str(project),
        REFLEX_WEB_WORKDIR=str(web),
        # Reflex's single-port mode: the backend serves the compiled frontend.
        __REFLEX_MOUNT_FRONTEND_COMPILED_APP="true",
        __REFLEX_SKIP_COMPILE="true",
    ) as host:
        context = browser.new_context()  # type: ignore[attr-defined]
        page = context.new_page()
        requests: list[str] = []
        sockets: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.on("websocket", lambda ws: sockets.append(ws.url))
        try:
            response = page.goto(host.url + "/admin/", timeout=20_000)
            # The page itself arrives...
            assert response is not None and response.status == 200
            assert "<html" in response.text()
            page.wait_for_timeout(2_000)
            # The HTML points at the root, outside the mount: the host 404s it.
            escaped = [u for u in requests if u.startswith(host.url + "/assets/")]
            assert escaped, requests
            # Whatever rendered, the counter cannot round-trip: no event
            # socket reaches the mounted backend.
            assert not any(
                u.startswith(host.url.replace("http", "ws") + "/admin/_event") for u in sockets
            ), sockets
            increment = page.locator("#increment")
            if increment.count():
                increment.click(timeout=5_000)
                page.wait_for_timeout(2_000)
                expect(page.locator("#count")).not_to_have_text("1")
        finally:
            context.close()
