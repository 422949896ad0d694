"""The backend of an app that uses uploads, served from a really read-only cache.

Reflex touches ``.web/backend/upload_is_used`` every time such an app's
backend starts. The cache here is a read-only bind mount (``mount --bind``
then ``remount,ro,bind``: even root gets ``EROFS``), in both backend modes:
the backend starts and its upload routes answer. On a writable cache the
same start changes no file of the artifact or of the blob store.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import FixtureApp, Host, spawn_host, stop_process, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts need root (CI runs as root)"),
]


@contextlib.contextmanager
def _read_only_view(source: Path, target: Path) -> Iterator[Path]:
    """``target``: the same directory as ``source``, mounted read-only."""
    target.mkdir()
    subprocess.run(["mount", "--bind", str(source), str(target)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(target)], check=True)
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


def _status(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


@contextlib.contextmanager
def _host(app: FixtureApp, cache: Path, mode: str, tmp_path: Path) -> Iterator[Host]:
    uploads = tmp_path / "uploads"
    uploads.mkdir(exist_ok=True)
    (uploads / "ro-proof.txt").write_text("served by the upload route")
    # A short private TMPDIR: the backend's private .web goes there (and the
    # socket, whose path must stay short), so leftovers can be counted.
    temp = Path(tempfile.mkdtemp(prefix="rbro", dir="/tmp"))
    host = spawn_host(
        "tests.hosts.project_host:app",
        cache_dir=cache,
        log_dir=tmp_path,
        MOUNT_PROJECT=str(app.project),
        MOUNT_PATH="/admin",
        REFLEX_BUILDD_BACKEND=mode,
        REFLEX_BUILDD_POLICY="fail",
        REFLEX_UPLOADED_FILES_DIR=str(uploads),
        TMPDIR=str(temp),
    )
    try:
        yield host
    finally:
        stop_process(host.process)
        left = [p.name for p in temp.glob("reflex-buildd-web-*")]
        shutil.rmtree(temp, ignore_errors=True)
        assert not left, f"private .web left behind: {left}"


def _backend_answers(host: Host) -> None:
    def up() -> bool:
        if host.process.poll() is not None or "failed to start" in host.output():
            raise AssertionError(f"the backend did not start:\n{host.output()}")
        return _status(host.url + "/admin/ping")[0] == 200

    wait_for(up, timeout=120, what="the backend's /ping")
    # The upload routes exist only when the backend read its marker.
    assert _status(host.url + "/admin/_upload/ro-proof.txt") == (200, b"served by the upload route")
    assert "Errno 30" not in host.output(), host.output()


@pytest.mark.parametrize("mode", ["inprocess", "process"])
def test_read_only_cache_runs_the_backend_of_an_app_with_uploads(
    rows_app: FixtureApp, tmp_path: Path, mode: str
) -> None:
    with _read_only_view(rows_app.cache, tmp_path / "ro-cache") as cache:
        # Really read-only, even for root.
        with pytest.raises(OSError, match="Read-only file system"):
            (cache / "probe").write_text("x")
        with _host(rows_app, cache, mode, tmp_path) as host:
            _backend_answers(host)
            assert _status(host.url + "/admin/")[0] == 200
            assert "is read-only here" in host.output()


def _snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every file under ``root``: mtime, ctime and size (a touch changes the first two)."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            st = path.stat()
            found[str(path.relative_to(root))] = (st.st_mtime_ns, st.st_ctime_ns, st.st_size)
    return found


@pytest.mark.parametrize("mode", ["inprocess", "process"])
def test_a_backend_start_changes_no_artifact_file(
    rows_app: FixtureApp, tmp_path: Path, mode: str
) -> None:
    cache = tmp_path / "cache"
    (cache / "v1").mkdir(parents=True)
    # One cp -a: artifact files stay hard links of their blobs, as in any cache.
    source = rows_app.cache / "v1"
    subprocess.run(
        ["cp", "-a", str(source / "artifacts"), str(source / "blobs"), str(cache / "v1")],
        check=True,
    )
    artifact = cache / "v1" / "artifacts" / rows_app.key
    assert (artifact / "web" / "backend" / "upload_is_used").is_file()
    before = _snapshot(artifact), _snapshot(cache / "v1" / "blobs")
    with _host(rows_app, cache, mode, tmp_path) as host:
        _backend_answers(host)
    assert (_snapshot(artifact), _snapshot(cache / "v1" / "blobs")) == before
