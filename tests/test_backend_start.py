"""The host answers before its Reflex backend has loaded, and a backend that cannot start is loud.

With ``backend_start="background"`` (the default) a host's startup ends once
the artifact is open: static files answer at once while Reflex imports the app
in a thread, and requests for the backend wait for it (none fails). A backend
that then fails to start is logged with its traceback and its requests answer
503, so ``<prefix>/ping`` is an honest readiness probe. (``"startup"`` keeps
the host's startup waiting for the backend and failing with it: tested in
test_static_two_projects.py and test_mounted_unchanged.py.)
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import FixtureApp, run_host

pytestmark = [pytest.mark.slow]

SLOW_IMPORT = "8"  # seconds: far longer than serving one page, even on a loaded machine


def _get(url: str, timeout: float = 60) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_static_answers_while_the_backend_loads(rows_app: FixtureApp, tmp_path: Path) -> None:
    with run_host(
        "tests.hosts.project_host:app",
        cache_dir=rows_app.cache,
        log_dir=tmp_path,
        MOUNT_PROJECT=str(rows_app.project),
        REFLEX_BUILDD_POLICY="fail",
        ROWS_SLOW_IMPORT=SLOW_IMPORT,
    ) as host:
        ping: dict[str, float] = {}

        def wait_for_ping() -> None:
            started = time.monotonic()
            assert _get(host.url + "/admin/ping")[0] == 200
            ping["seconds"] = time.monotonic() - started

        # A backend request sent first must wait for the backend, then succeed.
        waiter = threading.Thread(target=wait_for_ping)
        waiter.start()
        started = time.monotonic()
        status, body = _get(host.url + "/admin/")
        page = time.monotonic() - started
        assert status == 200 and b'data-prefix="/admin"' in body
        waiter.join(timeout=120)
        # The app's import sleeps SLOW_IMPORT seconds: the page came well before
        # it ended, the backend request only after it.
        assert page < float(SLOW_IMPORT) / 2 < ping["seconds"], (page, ping)
        assert _get(host.url + "/admin/products")[0] == 200


def test_backend_that_fails_in_the_background_is_loud(rows_app: FixtureApp, tmp_path: Path) -> None:
    with run_host(
        "tests.hosts.project_host:app",
        cache_dir=rows_app.cache,
        log_dir=tmp_path,
        MOUNT_PROJECT=str(rows_app.project),
        REFLEX_BUILDD_POLICY="fail",
        ROWS_FAIL_AT_IMPORT="1",
    ) as host:
        assert _get(host.url + "/admin/")[0] == 200  # the static side still serves
        status, body = _get(host.url + "/admin/ping")
        assert status == 503 and b"failed to start" in body
        output = host.output()
        assert "Reflex backend of" in output and "failed to start" in output, output
        assert "rows_app refuses to start" in output, output  # its traceback
