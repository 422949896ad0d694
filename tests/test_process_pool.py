"""Several backend processes per project in process mode (issue 21, item 1; issue 19,
items 6 and 13): sessions spread over the children, a dead child's sessions move to a
live one with their state (Redis), several children without Redis are refused, a stuck
child never holds requests without limit and is replaced, and a host leaves nothing
behind in its runtime directory.

Real hosts (uvicorn), real children, a real Redis (``tests/redisserver.py``), the
showcase spoken to over socket.io as its frontend does (``tests/sioclient.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import (
    SHOWCASE,
    Built,
    Host,
    run_host,
    run_in_own_loop,
    spawn_host,
    stop_process,
    wait_for,
)
from redisserver import RedisServer, redis_server
from reflex_buildd_client.errors import InvalidConfigError
from reflex_buildd_client.settings import Settings
from sioclient import ReflexSocket

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("redis") / "redis.log") as server:
        yield server


@pytest.fixture
def rundir_base(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private XDG_RUNTIME_DIR for the test's hosts (others' hosts stay out of sight).

    Short, as a real one is (``/run/user/<uid>``): before issue 19 a socket path over
    the 108 bytes of ``sun_path`` failed; now sockets are reached through
    ``/proc/self/fd``, so the length of the base no longer matters.
    """
    base = Path(tempfile.mkdtemp(prefix="run-", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(base))
    monkeypatch.delenv("REFLEX_REDIS_URL", raising=False)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _env(workers: int, **extra: str) -> dict[str, str]:
    return {
        "MOUNT_PROJECT": str(SHOWCASE),
        "REFLEX_BUILDD_BACKEND": "process",
        "REFLEX_BUILDD_POLICY": "fail",
        "REFLEX_BUILDD_BACKEND_WORKERS": str(workers),
        **extra,
    }


def _children(host_pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{host_pid}/task").iterdir():
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                if b"backend.child" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(int(child))
    return found


def _status(url: str, timeout: float = 30) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


# -- settings ----------------------------------------------------------------


def test_backend_workers_setting() -> None:
    assert Settings.load(environ={}).backend_workers == 1
    env = {"REFLEX_BUILDD_BACKEND_WORKERS": "3"}
    assert Settings.load(environ=env).backend_workers == 3
    auto = Settings.load(environ={"REFLEX_BUILDD_BACKEND_WORKERS": "auto"}).backend_workers
    assert auto == len(os.sched_getaffinity(0))
    assert Settings.load(environ=env, backend_workers=2).backend_workers == 2
    assert Settings.load(environ={}).override(backend_workers="auto").backend_workers == auto
    for bad in ("0", "-1", "two", "1.5", "100000"):
        with pytest.raises(InvalidConfigError, match="REFLEX_BUILDD_BACKEND_WORKERS") as info:
            Settings.load(environ={"REFLEX_BUILDD_BACKEND_WORKERS": bad})
        assert "\n" not in str(info.value)


def test_runtime_dir_setting() -> None:
    assert Settings.load(environ={"XDG_RUNTIME_DIR": "/run/user/7"}).runtime_dir == "/run/user/7"
    assert Settings.load(environ={}).runtime_dir == tempfile.gettempdir()  # TMPDIR, else /tmp


# -- hosts -------------------------------------------------------------------


async def _sessions(base: str, count: int) -> list[ReflexSocket]:
    return [await ReflexSocket.open(base) for _ in range(count)]


async def _survives(sock: ReflexSocket, expected: int) -> bool:
    """Whether the session still answers (its count is ``expected``), or lost its child."""
    try:
        return await asyncio.wait_for(sock.count(), 10) == expected
    except Exception:
        return False


async def _reconnect(base: str, token: str) -> int:
    """Reconnect a session by its token, once, as the frontend does, and send an event.

    One attempt with generous bounds: a second connection with the same token while
    the first is still pending would be a duplicate tab to Reflex (a new token).
    """
    sock = await ReflexSocket.open(base, token=token, timeout=60)
    try:
        count = await asyncio.wait_for(sock.count(), 60)
        assert sock.token == token, "Reflex took the session for a duplicate tab"
        return count
    finally:
        await sock.close()


def test_sessions_spread_and_survive_a_dead_child(
    showcase_build: Built, cache_dir: Path, rundir_base: Path, redis: RedisServer, tmp_path: Path
) -> None:
    """Four sessions over two children: each child serves two; killing one child
    loses exactly its two, which reconnect to a live child with their count (Redis)."""
    redis.flush()
    env = _env(2, REFLEX_REDIS_URL=redis.url)
    with run_host(
        "tests.hosts.project_host:app",
        cache_dir=cache_dir,
        log_dir=tmp_path,
        ready_path="/admin/ping",
        **env,
    ) as host:
        children = _children(host.process.pid)
        assert len(children) == 2, host.output()
        base = host.url.replace("http", "ws") + "/admin"

        async def scenario() -> None:
            socks = await _sessions(base, 4)
            assert [await s.count() for s in socks] == [1, 1, 1, 1]
            # Reflex writes a state back to Redis when its handler's context exits,
            # after the delta went out: a kill right after the last answer could
            # lose that write (under `reflex run` too). Let it land first.
            await asyncio.sleep(1.0)
            os.kill(children[0], signal.SIGKILL)
            alive = [await _survives(s, 2) for s in socks]
            # Least loaded first: two sessions on each child, so one child's death
            # costs exactly two sessions, and the other child served events.
            assert sorted(alive) == [False, False, True, True], alive
            for sock, survived in zip(socks, alive, strict=True):
                if not survived:
                    assert await _reconnect(base, sock.token) == 2
            for sock in socks:
                with contextlib.suppress(Exception):
                    await sock.close()

        run_in_own_loop(asyncio.wait_for(scenario(), 150))
        wait_for(
            lambda: "exited with signal SIGKILL; restarting" in host.output(),
            timeout=20,
            what="the host to log the death",
        )
        wait_for(lambda: len(_children(host.process.pid)) == 2, timeout=60, what="two children")


def test_several_children_without_redis_are_refused(
    cache_dir: Path, showcase_build: Built, rundir_base: Path, tmp_path: Path
) -> None:
    host = spawn_host(
        "tests.hosts.project_host:app",
        cache_dir=cache_dir,
        log_dir=tmp_path,
        **_env(2, REFLEX_BUILDD_BACKEND_START="startup"),
    )
    try:
        host.process.wait(timeout=120)
    finally:
        stop_process(host.process)
    output = host.output()
    assert host.process.returncode != 0, output
    assert (
        f"backend_workers=2: the app of {SHOWCASE.resolve()} keeps its state in one process "
        "(not Redis); several backend processes need Redis"
    ) in output, output
    assert os.listdir(rundir_base / f"reflex-buildd-{os.getuid()}") == []


def _files(rundir_base: Path) -> list[str]:
    return sorted(os.listdir(rundir_base / f"reflex-buildd-{os.getuid()}"))


def test_shutdown_leaves_nothing_and_a_crash_is_swept(
    cache_dir: Path, showcase_build: Built, rundir_base: Path, tmp_path: Path
) -> None:
    crashed = spawn_host(
        "tests.hosts.project_host:app", cache_dir=cache_dir, log_dir=tmp_path, **_env(1)
    )
    try:
        wait_for(
            lambda: _status(crashed.url + "/admin/ping", 5) == 200, timeout=90, what="the host"
        )
        crashed.process.kill()  # no shutdown at all: its child dies with it
        crashed.process.wait(timeout=10)
    finally:
        stop_process(crashed.process)
    leftovers = _files(rundir_base)
    assert {n.rsplit(".", 1)[1] for n in leftovers} == {"lock", "secret", "sock"}, leftovers
    # And the set of another pool whose host crashed long ago.
    here = rundir_base / f"reflex-buildd-{os.getuid()}"
    for suffix in (".lock", ".secret", ".sock"):
        (here / ("0123456789abcdef0123-0" + suffix)).write_bytes(b"")
        (here / ("0123456789abcdef0123-0" + suffix)).chmod(0o600)
    host: Host
    with run_host(
        "tests.hosts.project_host:app",
        cache_dir=cache_dir,
        log_dir=tmp_path,
        ready_path="/admin/ping",
        **_env(1),
    ) as host:
        assert _files(rundir_base) == leftovers, "only the live pool's files remain"
    assert "Application shutdown complete" in host.output()
    assert _files(rundir_base) == []


def test_a_stuck_child_gets_503_at_once_and_is_replaced(
    cache_dir: Path, showcase_build: Built, rundir_base: Path, tmp_path: Path
) -> None:
    """SIGSTOP: a path never asked before (an SPA route) answers 503 within the routing
    question's bound, the incident is logged once, and the child is killed and
    replaced after 30 s of silence (gunicorn's worker timeout)."""
    with run_host(
        "tests.hosts.project_host:app",
        cache_dir=cache_dir,
        log_dir=tmp_path,
        ready_path="/admin/ping",
        **_env(1),
    ) as host:
        (child,) = _children(host.process.pid)
        os.kill(child, signal.SIGSTOP)
        try:
            for n in range(3):
                started = time.monotonic()
                status = _status(f"{host.url}/admin/never-seen-{n}", timeout=60)
                assert status == 503, status
                assert time.monotonic() - started < 10
            assert host.output().count("did not answer") == 1, host.output()
            wait_for(
                lambda: "answered nothing for" in host.output(),
                timeout=60,
                what="the stuck child to be killed",
            )
            wait_for(
                lambda: [c for c in _children(host.process.pid) if c != child],
                timeout=30,
                what="a new child",
            )
            wait_for(
                lambda: _status(f"{host.url}/admin/never-seen-4", 10) == 404,
                timeout=60,
                what="the new child to answer",
            )
            assert "answers again" in host.output()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGCONT)


def _backend_children(host_pid: int) -> list[int]:
    """Backend children of every worker process of a uvicorn host (``--workers``)."""
    workers = [
        int(c)
        for task in Path(f"/proc/{host_pid}/task").iterdir()
        for c in (task / "children").read_text().split()
    ]
    found = []
    for worker in workers:
        with contextlib.suppress(OSError):
            found += _children(worker)
    return found


def test_host_workers_share_one_set_of_children(
    showcase_build: Built, cache_dir: Path, rundir_base: Path, redis: RedisServer, tmp_path: Path
) -> None:
    """Two uvicorn workers, two backend processes: two children in all, not four, and
    sessions through either worker reach them."""
    redis.flush()
    with run_host(
        "tests.hosts.project_host:app",
        cache_dir=cache_dir,
        log_dir=tmp_path,
        ready_path="/admin/ping",
        extra_args=("--workers", "2"),
        **_env(2, REFLEX_REDIS_URL=redis.url),
    ) as host:
        wait_for(
            lambda: len(_backend_children(host.process.pid)) == 2,
            timeout=90,
            what="two backend children",
        )
        base = host.url.replace("http", "ws") + "/admin"

        async def scenario() -> list[int]:
            socks = await _sessions(base, 6)  # new connections, spread over the workers
            try:
                return [await asyncio.wait_for(s.count(), 20) for s in socks]
            finally:
                for sock in socks:
                    await sock.close()

        assert run_in_own_loop(scenario()) == [1] * 6
        time.sleep(1)
        assert len(_backend_children(host.process.pid)) == 2
        stems = {n.rsplit(".", 1)[0] for n in _files(rundir_base)}
        assert len(stems) == 2, stems
