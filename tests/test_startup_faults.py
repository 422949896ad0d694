"""Host startup against a hostile disk: a read-only cache, and files rewritten while read.

- A cache the host may not write (an image shipping a prebuilt cache, run as
  another user) still serves its artifact, without a lease, logged once; with
  no artifact the host fails at once with a clear error instead of a raw
  ``PermissionError`` on a lock file. CI runs as root, which ignores file
  modes, so the host runs with every capability dropped (``setpriv``).
- The bytes a host serves are the bytes it verified: a file rewritten on disk
  after the check is never what the host serves (it reads each file once).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import blake3
import pytest

from conftest import SHOWCASE, Built, free_port, stop_process, tool_env, wait_for
from reflex_buildd_client.cache.store import Artifact, Cache
from reflex_buildd_client.mount import ReflexMount
from reflex_buildd_client.startup import checkout as checkout_module


def _unprivileged(cmd: list[str]) -> list[str]:
    # Root writes anywhere whatever the modes say; without capabilities it cannot.
    return ["setpriv", "--bounding-set", "-all", *cmd] if os.geteuid() == 0 else cmd


def _read_only_copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True)
    for dirpath, dirs, files in os.walk(target):
        for name in [*dirs, *files]:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode & 0o555)
    os.chmod(target, 0o555)
    return target


def _restore_writable(root: Path) -> None:
    os.chmod(root, 0o755)
    for dirpath, dirs, _files in os.walk(root):
        for name in dirs:
            os.chmod(os.path.join(dirpath, name), 0o755)


def _start_host(
    cache: Path, workdir: Path, **env: str
) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    log = workdir / "host.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            _unprivileged(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "examples.hosts.fastapi_host:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ]
            ),
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=tool_env(
                REFLEX_BUILDD_CACHE_DIR=str(cache),
                # The app's own run-time files go somewhere writable.
                REFLEX_UPLOADED_FILES_DIR=str(workdir / "uploads"),
                REFLEX_STATES_WORKDIR=str(workdir / "states"),
                **env,
            ),
        )
    return process, f"http://127.0.0.1:{port}", log


def test_read_only_cache_serves_its_artifact(
    showcase_build: Built, cache_dir: Path, tmp_path: Path
) -> None:
    cache = _read_only_copy(cache_dir, tmp_path / "ro-cache")
    leases_before = set(Cache(cache).leases_root.glob("*/*.json"))
    workdir = tmp_path / "host"
    workdir.mkdir()
    process, url, log = _start_host(cache, workdir)
    try:

        def page() -> bytes | None:
            if process.poll() is not None:
                raise AssertionError(f"host exited:\n{log.read_text(errors='replace')}")
            try:
                with urllib.request.urlopen(url + "/admin/", timeout=5) as resp:
                    return bytes(resp.read())
            except OSError:
                return None

        body = wait_for(page, timeout=120, what="the page from a read-only cache")
        assert b'data-prefix="/admin"' in body
        output = log.read_text(errors="replace")
        assert output.count("is read-only here") == 1, output
        assert "PermissionError" not in output
        # No lease was written (the copy may carry stale ones of the session's hosts).
        assert set(Cache(cache).leases_root.glob("*/*.json")) == leases_before
    finally:
        stop_process(process)
        _restore_writable(cache)


def test_read_only_cache_without_the_artifact_fails_clearly(tmp_path: Path) -> None:
    cache = tmp_path / "empty-ro-cache"
    (cache / "v1").mkdir(parents=True)
    _read_only_copy(cache, tmp_path / "ro")
    workdir = tmp_path / "host"
    workdir.mkdir()
    process, _url, log = _start_host(tmp_path / "ro", workdir)
    try:
        process.wait(timeout=120)
    finally:
        stop_process(process)
        _restore_writable(tmp_path / "ro")
    output = log.read_text(errors="replace")
    assert process.returncode != 0
    assert "ReadOnlyCacheError" in output and "cannot build it there" in output, output
    # The command names the real project, ready to paste.
    assert f"reflex-buildd build {SHOWCASE} --cache-dir" in output, output


def test_served_bytes_are_the_verified_bytes(
    showcase_build: Built, cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file rewritten on disk right after the check is not what gets served."""
    copy = tmp_path / "cache"
    shutil.copytree(cache_dir, copy, symlinks=True)
    manifest = Cache(copy).read_manifest(showcase_build.key)
    assert manifest is not None
    rel, entry = next(
        (rel, e)
        for rel, e in sorted(manifest.files.items())
        if rel.startswith("public/assets/") and rel.endswith(".js") and e.size > 4096
    )
    target = Cache(copy).artifact_dir(showcase_build.key) / rel
    real = checkout_module.read_checked

    def check_then_rewrite(artifact: Artifact) -> tuple[dict[str, bytes], dict[str, str]]:
        checked = real(artifact)
        # The moment a second read would pick up: same size, other bytes.
        os.chmod(target, 0o644)
        good = target.read_bytes()
        target.write_bytes(bytes(b ^ 0xFF for b in good[:64]) + good[64:])
        return checked

    monkeypatch.setattr(checkout_module, "read_checked", check_then_rewrite)
    mount = ReflexMount(SHOWCASE, cache_dir=copy, policy="fail")
    mount.open_artifact()
    try:
        assert mount._files is not None
        data = mount._files.raw["/" + rel.removeprefix("public/")].data
        assert blake3.blake3(data).hexdigest() == entry.digest
        assert target.read_bytes() != data  # the disk did change under the host
    finally:
        assert mount._lease is not None
        mount._lease.release()


def test_unprivileged_really_cannot_write(tmp_path: Path) -> None:
    """The read-only tests mean something only if the host really cannot write."""
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        result = subprocess.run(
            _unprivileged(["touch", str(ro / "x")]), capture_output=True, timeout=30, check=False
        )
        assert result.returncode != 0
    finally:
        os.chmod(ro, 0o755)
