"""Reflex keeps one app per process: two in-process projects in one host fail at startup.

The first ``mount()`` of an in-process project owns the process's Reflex app
(program order, not the order lifespans or background loads happen to run
in); the host stops at startup with an error naming the later mount and
``backend="process"``. A backend that failed to start answers a websocket
handshake with the 503 its log line promises.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from conftest import SHOWCASE, Built, FixtureApp, spawn_host, stop_process, wait_for
from reflex_buildd_client.errors import InvalidConfigError

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("order", ["showcase-first", "second-first"])
def test_two_in_process_projects_fail_at_startup_naming_the_later_mount(
    showcase_build: Built,
    cache_dir: Path,
    second_app_copy: FixtureApp,
    tmp_path: Path,
    order: str,
) -> None:
    showcase = (str(SHOWCASE), str(cache_dir))
    second = (str(second_app_copy.project), str(second_app_copy.cache))
    first, later = (showcase, second) if order == "showcase-first" else (second, showcase)
    host = spawn_host(
        "tests.hosts.two_inprocess_host:app",
        cache_dir=cache_dir,
        log_dir=tmp_path,
        FIRST_PROJECT=first[0],
        FIRST_CACHE=first[1],
        SECOND_PROJECT=later[0],
        SECOND_CACHE=later[1],
        REFLEX_BUILDD_POLICY="fail",
    )
    try:
        host.process.wait(timeout=120)
    finally:
        stop_process(host.process)
    output = host.output()
    assert host.process.returncode != 0, output
    assert "Application startup failed" in output, output
    assert f"the mount of {later[0]} at /second cannot run in this process" in output, output
    assert f"the mount of {first[0]} at /first, mounted earlier" in output, output
    assert f'Mount {Path(later[0]).resolve()} with backend="process"' in output, output
    # Refused before anything was opened or loaded.
    assert "serving" not in output and "failed to start" not in output, output


def test_the_slot_rule(tmp_path: Path) -> None:
    from reflex_buildd_client.backend.slot import check_slot, claim_slot

    a, b = tmp_path / "a", tmp_path / "b"
    # A mount that is gone stands in no line.
    gone = claim_slot(tmp_path / "gone", lambda: "gone", lambda: True)
    del gone
    check_slot(claim_slot(b, lambda: "mount b", lambda: True))

    in_process = {"a": True}
    first = claim_slot(a, lambda: "mount a", lambda: in_process["a"])
    same = claim_slot(a, lambda: "mount a again", lambda: True)
    later = claim_slot(b, lambda: "mount b", lambda: True)
    check_slot(first)  # the first owns it
    check_slot(same)  # the same project shares its one app
    with pytest.raises(InvalidConfigError, match=r"mount b cannot run.*mount a, mounted earlier"):
        check_slot(later)
    in_process["a"] = False  # the first chose process mode after all
    with pytest.raises(InvalidConfigError, match=r"mount a again, mounted earlier"):
        check_slot(later)  # ... but the same project in-process again still owns it
    assert first is not None


def _handshake_status(url_host: str, port: int, path: str) -> int:
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {url_host}:{port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(request.encode())
        line = sock.makefile("rb").readline().decode("latin-1")
    return int(line.split()[1])


def test_a_backend_that_failed_to_start_answers_websockets_with_503(
    rows_app: FixtureApp, tmp_path: Path
) -> None:
    temp = tmp_path / "tmp"  # the backend's private .web is made here
    temp.mkdir()
    host = spawn_host(
        "tests.hosts.project_host:app",
        cache_dir=rows_app.cache,
        log_dir=tmp_path,
        MOUNT_PROJECT=str(rows_app.project),
        REFLEX_BUILDD_POLICY="fail",
        ROWS_FAIL_AT_IMPORT="1",
        TMPDIR=str(temp),
    )
    try:
        wait_for(lambda: "failed to start" in host.output(), timeout=120, what="the failed start")
        port = int(host.url.rsplit(":", 1)[1])
        path = "/admin/_event/?EIO=4&transport=websocket"
        assert _handshake_status("127.0.0.1", port, path) == 503, host.output()
        assert "Exception in ASGI application" not in host.output()
    finally:
        stop_process(host.process)
    assert os.path.exists(host.log)
    # An app that could not load leaves no private .web behind.
    assert not list(temp.glob("reflex-buildd-web-*"))
