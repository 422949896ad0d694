"""Process mode's runtime directory against another local user (issue 19, item 1 and 13).

The attacker is a real second uid (65534, through ``setpriv``) working in a
world-writable temp directory, as any local user can in ``/tmp``: it plants
links before the host starts and swaps them while it runs. The first tests
drive :class:`RuntimeDir` directly (milliseconds each); the last ones run a
real host in process mode with ``XDG_RUNTIME_DIR`` unset, as system services
do, and try to receive its forwarded requests and to make it write through a
link into a file of the host's user.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pickle
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import (
    SHOWCASE,
    Built,
    Host,
    run_in_own_loop,
    spawn_host,
    stop_process,
    wait_for,
    wait_ready,
)
from reflex_buildd_client.backend.rundir import RuntimeDir, RuntimeDirError

ATTACKER_UID = 65534
ATTACKER = (
    "setpriv",
    f"--reuid={ATTACKER_UID}",
    f"--regid={ATTACKER_UID}",
    "--clear-groups",
    "/usr/bin/python3",  # the system Python: the attacker cannot read /root's
    "-c",
)
NAME = f"reflex-buildd-{os.getuid()}"

pytestmark = pytest.mark.skipif(
    os.getuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root and setpriv to act as a second uid",
)


def as_attacker(code: str, *args: str) -> None:
    """Run ``code`` as the second uid (``sys.argv[1:]`` = ``args``)."""
    subprocess.run([*ATTACKER, code, *args], check=True, timeout=30, capture_output=True)


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A temp directory every user may write in, sticky like ``/tmp``."""
    base = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
    base.chmod(0o1777)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def ours(tmp_path: Path) -> Path:
    """A private directory of the host's user (like ``/root`` or ``~/.ssh``) with a file in it."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "precious").write_text("precious\n")
    return private


def test_planted_link_to_a_private_directory_of_ours_is_refused(
    shared_tmp: Path, ours: Path
) -> None:
    # The link passes a stat that follows links: the target is ours and 0700.
    as_attacker(
        "import os, sys; os.symlink(sys.argv[1], sys.argv[2])", str(ours), str(shared_tmp / NAME)
    )
    with pytest.raises(RuntimeDirError, match="is a link or not a directory; refusing it") as info:
        RuntimeDir(shared_tmp)
    assert str(shared_tmp / NAME) in str(info.value)
    assert "\n" not in str(info.value)
    # An error of ours: subclasses the builtin a caller catches, and pickles.
    assert isinstance(info.value, PermissionError)
    assert str(pickle.loads(pickle.dumps(info.value))) == str(info.value)
    assert sorted(p.name for p in ours.iterdir()) == ["precious"]


def test_planted_directory_of_another_user_is_refused(shared_tmp: Path) -> None:
    as_attacker("import os, sys; os.mkdir(sys.argv[1], 0o777)", str(shared_tmp / NAME))
    with pytest.raises(RuntimeDirError, match=f"owner uid {ATTACKER_UID}"):
        RuntimeDir(shared_tmp)


def test_a_directory_open_to_others_is_refused(shared_tmp: Path) -> None:
    (shared_tmp / NAME).mkdir(mode=0o700)
    (shared_tmp / NAME).chmod(0o755)
    with pytest.raises(RuntimeDirError, match="mode 0755"):
        RuntimeDir(shared_tmp)


def test_a_swap_after_the_check_changes_nothing(tmp_path: Path, ours: Path) -> None:
    """Without the sticky bit another user can rename our directory and put a link in
    its place: what was checked is still what is used."""
    base = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
    base.chmod(0o777)  # world-writable, not sticky
    try:
        rundir = RuntimeDir(base)
        ours_listener = rundir.listen("x.sock")
        evil = base / "evil"
        as_attacker(
            """
import os, socket, sys
base, evil, victim, NAME = sys.argv[1:]
os.mkdir(evil, 0o777)
os.rename(os.path.join(base, NAME), os.path.join(base, "moved"))
os.symlink(evil, os.path.join(base, NAME))
os.symlink(victim, os.path.join(evil, "x.secret.new"))
os.symlink(victim, os.path.join(evil, "x.lock"))
s = socket.socket(socket.AF_UNIX); s.bind(os.path.join(evil, "x.sock")); s.listen(1)
os.chmod(os.path.join(evil, "x.sock"), 0o777)
""",
            str(base),
            str(evil),
            str(ours / "precious"),
            NAME,
        )
        rundir.write_secret("x.secret", b"s3cret")
        lock = rundir.try_lock("x.lock")
        assert lock is not None
        client = socket.socket(socket.AF_UNIX)
        client.settimeout(5)
        client.connect(rundir.address("x.sock"))
        accepted, _ = ours_listener.accept()  # our socket got it, not the attacker's
        accepted.close()
        client.close()
        ours_listener.close()
        assert (ours / "precious").read_text() == "precious\n"
        assert (base / "moved" / "x.secret").read_bytes() == b"s3cret"
        assert not (evil / "x.secret").exists()
        rundir.release("x", lock)
        assert sorted(os.listdir(base / "moved")) == []
        rundir.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_links_inside_are_removed_not_followed(shared_tmp: Path, ours: Path) -> None:
    rundir = RuntimeDir(shared_tmp)
    victim = ours / "precious"
    (shared_tmp / NAME / "x.secret.new").symlink_to(victim)
    (shared_tmp / NAME / "y.lock").symlink_to(victim)
    rundir.write_secret("x.secret", b"s3cret")
    assert victim.read_text() == "precious\n"
    with pytest.raises(RuntimeDirError, match=r"y\.lock is a link"):
        rundir.open_lock("y.lock")
    (shared_tmp / NAME / "z.secret").symlink_to(victim)
    assert rundir.read_secret("z.secret") == b""


def test_sweep_removes_dead_sets_and_keeps_live_ones(shared_tmp: Path) -> None:
    rundir = RuntimeDir(shared_tmp)
    here = shared_tmp / NAME
    for stem in ("dead", "live"):
        for suffix in (".lock", ".secret", ".sock"):
            (here / (stem + suffix)).write_bytes(b"")
            (here / (stem + suffix)).chmod(0o600)
    (here / "orphan.sock").write_bytes(b"")  # no lock at all
    # A live supervisor (another process) holds its lock.
    holder = subprocess.Popen(
        [
            "python3",
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'r+'); "
            "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)",
            str(here / "live.lock"),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
        assert sorted(rundir.sweep()) == ["dead", "orphan"]
        assert sorted(os.listdir(here)) == ["live.lock", "live.secret", "live.sock"]
    finally:
        holder.kill()
        holder.wait(timeout=10)
    fd = rundir.try_lock("live.lock")
    assert fd is not None
    fcntl.flock(fd, fcntl.LOCK_UN)
    rundir.release("live", fd)
    assert os.listdir(here) == []


# -- a real host -------------------------------------------------------------


_LISTEN = """
import os, socket, sys, threading
evil, capture = sys.argv[1], sys.argv[2]
def serve(name):
    s = socket.socket(socket.AF_UNIX)
    s.bind(os.path.join(evil, name)); os.chmod(os.path.join(evil, name), 0o777); s.listen(8)
    while True:
        c, _ = s.accept(); c.settimeout(2)
        try:
            data = c.recv(65536)
        except OSError:
            data = b""
        with open(capture, "ab") as f:
            f.write(data)
        c.close()
for name in sys.argv[3:]:
    threading.Thread(target=serve, args=(name,), daemon=True).start()
print("listening", flush=True)
threading.Event().wait(120)
"""


def _attacker_listener(evil: Path, capture: Path, stems: list[str]) -> subprocess.Popen[bytes]:
    capture.touch()
    capture.chmod(0o666)
    process = subprocess.Popen(
        [*ATTACKER, _LISTEN, str(evil), str(capture), *(s + ".sock" for s in stems)],
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == b"listening"
    return process


def _stems(showcase_build: Built, cache: Path) -> list[str]:
    """The names the old code (one child) and the new (slot 0) give the showcase's files."""
    import blake3

    name = blake3.blake3(
        f"{cache.resolve()}\0{SHOWCASE.resolve()}\0{showcase_build.key}".encode()
    ).hexdigest()[:20]
    return [name, name + "-0"]


def _websocket_with_cookie(base: str) -> None:
    """A browser's socket.io connection through the host, with its session cookie."""
    from websockets.asyncio.client import connect

    async def go() -> None:
        url = base.replace("http", "ws") + "/admin/_event/?EIO=4&transport=websocket"
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                ws = await connect(url, additional_headers={"Cookie": "session=TOPSECRET"})
                await ws.recv()
                await ws.close()

    run_in_own_loop(go())


def _host(cache_dir: Path, log_dir: Path, base: Path, monkeypatch: pytest.MonkeyPatch) -> Host:
    """A host in process mode whose runtime directory goes under ``base`` (``TMPDIR``)."""
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)  # as for a system service
    monkeypatch.delenv("REFLEX_REDIS_URL", raising=False)
    return spawn_host(
        "tests.hosts.project_host:app",
        cache_dir=cache_dir,
        log_dir=log_dir,
        MOUNT_PROJECT=str(SHOWCASE),
        REFLEX_BUILDD_BACKEND="process",
        REFLEX_BUILDD_POLICY="fail",
        REFLEX_BUILDD_BACKEND_START="startup",
        TMPDIR=str(base),
    )


def _child_pids(host_pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{host_pid}/task").iterdir():
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                if b"backend.child" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(int(child))
    return found


def test_host_refuses_a_planted_runtime_directory(
    showcase_build: Built,
    cache_dir: Path,
    shared_tmp: Path,
    ours: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Planted before the host starts, a link to a private directory of ours passed the
    old check; swapped to the attacker's directory, it received the forwarded requests
    (cookies included) and a planted ``<name>.tmp`` link made the host write through it."""
    as_attacker(
        "import os, sys; os.symlink(sys.argv[1], sys.argv[2])", str(ours), str(shared_tmp / NAME)
    )
    host = _host(cache_dir, tmp_path, shared_tmp, monkeypatch)
    capture = shared_tmp / "capture"
    listener = None
    try:
        deadline = time.monotonic() + 90
        while host.process.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(OSError, RuntimeError, TimeoutError):
                wait_ready(host, "/admin/ping", timeout=1)
                break
        if host.process.poll() is None:
            # It started (the old code): play the attack through.
            evil = shared_tmp / "evil"
            stems = _stems(showcase_build, cache_dir)
            as_attacker(
                "import os, sys\n"
                "os.mkdir(sys.argv[1], 0o777)\n"
                "for s in sys.argv[4:]: os.symlink(sys.argv[3], os.path.join(sys.argv[1], s + '.tmp'))\n"
                "os.symlink(sys.argv[1], sys.argv[2] + '.new'); os.rename(sys.argv[2] + '.new', sys.argv[2])",
                str(evil), str(shared_tmp / NAME), str(ours / "precious"), *stems,
            )  # fmt: skip
            listener = _attacker_listener(evil, capture, stems)
            _websocket_with_cookie(host.url)
            for child in _child_pids(host.process.pid):
                os.kill(child, signal.SIGKILL)  # its restart rewrites the secret
            time.sleep(3)
            pytest.fail(
                f"the host used a planted runtime directory; the attacker received "
                f"{capture.read_bytes()[:300]!r}; our file now holds "
                f"{(ours / 'precious').read_bytes()!r}"
            )
        output = host.output()
        assert host.process.returncode != 0, output
        assert f"runtime directory {shared_tmp / NAME} is a link or not a directory" in output
        assert sorted(p.name for p in ours.iterdir()) == ["precious"]
    finally:
        stop_process(host.process)
        if listener is not None:
            listener.kill()
            listener.wait(timeout=10)


def test_host_is_unaffected_by_a_swap_while_it_runs(
    showcase_build: Built,
    cache_dir: Path,
    ours: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A world-writable, non-sticky temp directory: the attacker renames the host's
    runtime directory away while it runs and links its own in its place, with
    listening sockets and links named like the host's files. New connections,
    a restarted child and its new secret all stay in the directory the host checked."""
    base = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
    base.chmod(0o777)
    host = _host(cache_dir, tmp_path, base, monkeypatch)
    listener = None
    capture = base / "capture"
    try:
        wait_ready(host, "/admin/ping", timeout=90)
        evil = base / "evil"
        stems = _stems(showcase_build, cache_dir)
        as_attacker(
            "import os, sys\n"
            "os.mkdir(sys.argv[1], 0o777)\n"
            "for s in sys.argv[4:]:\n"
            "    for suffix in ('.tmp', '.secret.new', '.secret'):\n"
            "        os.symlink(sys.argv[3], os.path.join(sys.argv[1], s + suffix))\n"
            "os.rename(sys.argv[2], sys.argv[2] + '.moved'); os.symlink(sys.argv[1], sys.argv[2])",
            str(evil), str(base / NAME), str(ours / "precious"), *stems,
        )  # fmt: skip
        listener = _attacker_listener(evil, capture, stems)
        (child,) = _child_pids(host.process.pid)
        os.kill(child, signal.SIGKILL)
        wait_for(
            lambda: [c for c in _child_pids(host.process.pid) if c != child],
            timeout=30,
            what="a new child",
        )
        wait_ready(host, "/admin/ping", timeout=60)
        _websocket_with_cookie(host.url)
        from sioclient import ReflexSocket

        async def one_event() -> int:
            sock = await ReflexSocket.open(host.url.replace("http", "ws") + "/admin")
            try:
                return await asyncio.wait_for(sock.count(), 20)
            finally:
                await sock.close()

        assert run_in_own_loop(one_event()) == 1
        assert capture.read_bytes() == b"", capture.read_bytes()[:300]
        assert (ours / "precious").read_text() == "precious\n"
    finally:
        stop_process(host.process)
        if listener is not None:
            listener.kill()
            listener.wait(timeout=10)
        # A clean shutdown removed the host's files from the directory it checked.
        moved = base / (NAME + ".moved")
        leftovers = sorted(os.listdir(moved)) if moved.exists() else []
        shutil.rmtree(base, ignore_errors=True)
    assert leftovers == [], leftovers
