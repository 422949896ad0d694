"""Dev mode's pure parts: the target variable, routing, the Vite command, the child's env.

The whole loop (real processes, Chromium) is tests/test_dev_browser.py.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from conftest import SHOWCASE
from reflex_buildd.dev import PLUGIN, DevAlreadyRunningError, DevOptions, child_env, run_dev
from reflex_buildd.devserver import vite_command
from reflex_buildd_client.dev.proxy import (
    DEFAULT_BACKEND_PATHS,
    DevProxy,
    _close_code,
    start_dev_proxy,
)
from reflex_buildd_client.dev.target import DEV_ENV, DevTarget
from reflex_buildd_client.errors import InvalidConfigError
from reflex_buildd_client.settings import Settings

T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` in a thread of its own: Playwright's sync API (the session
    browser) keeps an event loop running in the main thread, where it refuses."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result(timeout=30)


def _target(tmp_path: Path, prefix: str = "/admin") -> DevTarget:
    return DevTarget(
        project=SHOWCASE,
        prefix=prefix,
        frontend="http://127.0.0.1:5001",
        backend="http://127.0.0.1:5002",
        routes_file=tmp_path / "routes.json",
    )


def test_target_round_trips_through_the_variable(tmp_path: Path) -> None:
    target = _target(tmp_path)
    assert DevTarget.from_env(target.to_env()) == target
    root = _target(tmp_path, prefix="")
    assert DevTarget.from_env(root.to_env()).prefix == ""


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("frontend", "http://10.0.0.5:5001"),  # not loopback: never proxy elsewhere
        ("backend", "http://example.com:80"),
        ("frontend", "https://127.0.0.1:5001"),
        ("backend", "http://127.0.0.1"),  # no port
        ("prefix", "admin"),
        ("prefix", "/a/../b"),
    ],
)
def test_malformed_targets_are_refused(tmp_path: Path, field: str, value: str) -> None:
    data = json.loads(_target(tmp_path).to_env())
    data[field] = value
    with pytest.raises(InvalidConfigError) as info:
        DevTarget.from_env(json.dumps(data))
    assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidConfigError):
        DevTarget.from_env("{not json")


def test_settings_read_the_variable_once(tmp_path: Path) -> None:
    target = _target(tmp_path)
    env = {DEV_ENV: target.to_env()}
    assert Settings.load(environ=env, cache_dir=tmp_path).dev == target
    assert Settings.load(environ={}, cache_dir=tmp_path).dev is None
    with pytest.raises(InvalidConfigError):
        Settings.load(environ={DEV_ENV: '{"project": "x"}'}, cache_dir=tmp_path)


def test_only_the_named_project_is_in_dev_mode(tmp_path: Path) -> None:
    # Production: not even the project is resolved (this one does not exist).
    assert _run(start_dev_proxy(None, tmp_path / "missing")) is None
    second = tmp_path / "second"
    second.mkdir()
    (second / "rxconfig.py").write_text("import reflex as rx\nconfig = rx.Config(app_name='x')\n")
    assert _run(start_dev_proxy(_target(tmp_path), second)) is None

    async def named() -> bool:
        proxy = await start_dev_proxy(_target(tmp_path), SHOWCASE)
        assert proxy is not None
        await proxy.close()
        return True

    assert _run(named())


def _scope(path: str, root_path: str = "/admin") -> dict[str, object]:
    return {"type": "http", "path": root_path + path, "root_path": root_path, "headers": []}


def test_routing_backend_paths_lose_the_prefix_vite_keeps_it(tmp_path: Path) -> None:
    proxy = DevProxy(_target(tmp_path))
    assert proxy.upstream(_scope("/_event/")) == ("http://127.0.0.1:5002/_event/", True)
    assert proxy.upstream(_scope("/ping")) == ("http://127.0.0.1:5002/ping", True)
    assert proxy.upstream(_scope("/_upload/a b.txt")) == (
        "http://127.0.0.1:5002/_upload/a%20b.txt",
        True,
    )
    assert proxy.upstream(_scope("")) == ("http://127.0.0.1:5001/admin/", False)
    assert proxy.upstream(_scope("/@id/__x00__virtual:react-router/browser-manifest")) == (
        "http://127.0.0.1:5001/admin/@id/__x00__virtual:react-router/browser-manifest",
        False,
    )
    # Not a backend route just because it starts alike.
    assert proxy.upstream(_scope("/pingpong"))[1] is False


def test_routes_written_by_the_backend_are_picked_up(tmp_path: Path) -> None:
    target = _target(tmp_path)
    proxy = DevProxy(target)
    assert proxy.upstream(_scope("/api/items"))[1] is False
    assert target.routes_file is not None
    target.routes_file.write_text(json.dumps(["/api", "/ping"]))
    assert proxy.upstream(_scope("/api/items")) == ("http://127.0.0.1:5002/api/items", True)
    # A half-written file keeps the last good list.
    target.routes_file.write_text('["/other"')
    os.utime(target.routes_file, ns=(1, 1))
    assert proxy.upstream(_scope("/api/items"))[1] is True
    assert DEFAULT_BACKEND_PATHS <= proxy._routes.current()


def test_close_codes_passed_on_are_sendable() -> None:
    assert _close_code(None) == 1000
    assert _close_code(1005) == 1000
    assert _close_code(1006) == 1011  # upstream vanished (a backend reload)
    assert _close_code(1001) == 1001
    assert _close_code(4001) == 4001
    assert _close_code(1015) == 1011


def test_vite_listens_on_loopback_only() -> None:
    bun = vite_command(["bun", "--bun"], npm=False, port=5173)
    assert bun == ["bun", "--bun", "run", "dev", "127.0.0.1", "--port", "5173", "--strictPort"]
    npm = vite_command(["npm"], npm=True, port=5173)
    assert npm[:4] == ["npm", "run", "dev", "--"] and npm[4] == "127.0.0.1"


def _settings(environ: dict[str, str], cache: Path) -> Settings:
    # The child's environment is the settings' one, plus the runtime's PATH (bun, as here).
    return Settings(cache_dir=cache, environ={**environ, "PATH": os.environ.get("PATH", "")})


def test_child_env(tmp_path: Path) -> None:
    target = _target(tmp_path)
    environ = {DEV_ENV: "x", "__REFLEX_SKIP_COMPILE": "true", "REFLEX_EXTRA_PLUGINS": "a.B"}
    env = child_env(target, tmp_path / "web", _settings(environ, tmp_path))
    assert "__REFLEX_SKIP_COMPILE" not in env
    assert DevTarget.from_env(env[DEV_ENV]) == target  # the plugin finds the routes file
    assert env["REFLEX_FRONTEND_PATH"] == "/admin"
    assert env["REFLEX_WEB_WORKDIR"] == str(tmp_path / "web")
    assert env["REFLEX_EXTRA_PLUGINS"] == f"a.B,{PLUGIN}"
    root = child_env(
        _target(tmp_path, prefix=""), tmp_path, _settings({"REFLEX_FRONTEND_PATH": "/x"}, tmp_path)
    )
    assert "REFLEX_FRONTEND_PATH" not in root


def test_one_dev_session_per_project_and_cache(tmp_path: Path) -> None:
    from filelock import FileLock

    from reflex_buildd_client.cache.store import Cache
    from reflex_buildd_client.project import find_project, project_id

    cache, project = Cache(tmp_path / "cache"), find_project(SHOWCASE)
    lock_path = cache.dev_lock_path(project_id(project.root))
    lock_path.parent.mkdir(parents=True)
    with FileLock(str(lock_path)):  # another session holds it
        with pytest.raises(DevAlreadyRunningError) as info:
            options = DevOptions(app="x:app", prefix="/admin", settings=Settings.load())
            run_dev(project, cache, options)
    assert isinstance(info.value, RuntimeError)
    assert str(project.root) in str(info.value)


def _call(proxy: DevProxy, scope: dict[str, object]) -> list[dict[str, object]]:
    """Run one request through the proxy in process; return what it sent."""
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async def run() -> None:
        await proxy.start()
        try:
            await proxy(scope, receive, send)  # type: ignore[arg-type]
        finally:
            await proxy.close()

    _run(run())
    return sent


def test_a_request_at_another_prefix_is_told_the_path_to_use(tmp_path: Path) -> None:
    scope = {**_scope("/", root_path="/other"), "method": "GET", "query_string": b""}
    sent = _call(DevProxy(_target(tmp_path)), scope)
    assert sent[0]["status"] == 500
    body = sent[1]["body"]
    assert isinstance(body, bytes) and b"--path /other" in body and b"at /admin only" in body


def test_a_dev_server_that_is_down_gets_a_502_that_says_why(tmp_path: Path) -> None:
    from conftest import free_port

    target = _target(tmp_path)
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    proxy = DevProxy(DevTarget(target.project, "/admin", down, down, target.routes_file))
    for path, what in (("/ping", b"Reflex backend"), ("/about", b"Vite dev server")):
        sent = _call(proxy, {**_scope(path), "method": "GET", "query_string": b""})
        assert sent[0]["status"] == 502
        body = sent[1]["body"]
        assert isinstance(body, bytes) and what in body and b"see the terminal" in body


def test_a_session_reads_the_projects_pins_and_writes_its_own_copy(tmp_path: Path) -> None:
    from reflex_buildd.dev import _seed_lockfiles
    from reflex_buildd_client.project import Project

    project = Project(root=tmp_path / "proj", app_name="x")
    (project.root / "reflex.lock").mkdir(parents=True)
    (project.root / "reflex.lock" / "bun.lock").write_text("pins")
    session = tmp_path / "dev" / "reflex.lock"
    session.mkdir(parents=True)
    (session / "package.json").write_text("stale: from another session")
    assert _seed_lockfiles(project, session) == session
    assert sorted(p.name for p in session.iterdir()) == ["bun.lock"]
    assert (session / "bun.lock").read_text() == "pins"
    (project.root / "reflex.lock" / "bun.lock").unlink()
    (project.root / "reflex.lock").rmdir()
    assert not _seed_lockfiles(project, session).exists()  # no pins: Reflex starts fresh


def test_the_route_list_covers_api_transformer_routers() -> None:
    from fastapi import APIRouter, FastAPI
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from reflex_buildd.devplugin import route_paths

    async def ok(request: object) -> PlainTextResponse:
        return PlainTextResponse("ok")

    api = FastAPI()
    router = APIRouter(prefix="/api/v1")
    router.add_api_route("/items/{item}", ok)
    api.include_router(router)  # one route object without a path of its own
    api.add_api_route("/whoami", ok)

    class App:
        _api = Starlette(routes=[Route("/ping", ok), Route("/_upload/{path:path}", ok)])
        api_transformer = api

    assert {"/ping", "/_upload", "/api/v1/items", "/whoami"} <= route_paths(App())
