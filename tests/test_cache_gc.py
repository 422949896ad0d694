"""gc, leases and dedup against a real cache, with real host processes (artifacts in use are never deleted).

Artifacts are made with the real ``publish`` from the session's showcase
build (a copy with one file changed per key), so these tests need one build
per session, not one per artifact.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import (
    SHOWCASE,
    Built,
    run_cli,
    spawn_host,
    stop_process,
    tool_env,
    wait_for,
    wait_ready,
)
from reflex_buildd.publish import publish
from reflex_buildd_client.cache.lease import live_leases, read_leases
from reflex_buildd_client.cache.manifest import Manifest
from reflex_buildd_client.cache.status import read_journal
from reflex_buildd_client.cache.store import MANIFEST_NAME, Cache, host_tag

pytestmark = pytest.mark.slow

HOST = "examples.hosts.fastapi_host:app"

LEASE_HOLDER = """
import sys, time
from reflex_buildd_client.cache.lease import take_lease
from reflex_buildd_client.cache.store import Cache
lease = take_lease(Cache(sys.argv[1]), sys.argv[2])
print("leased" if lease else "missing", flush=True)
time.sleep(300)
"""


def publish_copy(cache: Cache, source: Path, key: str, *, change: bytes = b"") -> Path:
    """Publish a copy of the artifact at ``source`` as ``key`` (one extra file if ``change``)."""
    manifest = Manifest.from_json(json.loads((source / MANIFEST_NAME).read_bytes()))
    cache.ensure()
    staging = cache.tmp_dir() / f"build-{key[:12]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    shutil.copytree(source, staging, ignore=shutil.ignore_patterns(MANIFEST_NAME))
    if change:
        (staging / "public" / "changed.txt").write_bytes(change)
    return publish(
        cache,
        staging,
        key=key,
        inputs=manifest.inputs,
        project=manifest.project,
        build=manifest.build,
        routes=manifest.routes,
    ).path


def _set_last_used(cache: Cache, key: str, when: float) -> None:
    used = cache.base / "used" / key
    used.parent.mkdir(parents=True, exist_ok=True)
    used.touch()
    os.utime(used, (when, when))


def _keys(cache: Cache) -> set[str]:
    return {p.name for p in (cache.base / "artifacts").iterdir()}


def _gc(cache: Cache, *args: str) -> dict[str, object]:
    result = run_cli("gc", *args, "--json", cache_dir=cache.root)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _hold_lease(cache: Cache, key: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", LEASE_HOLDER, str(cache.root), key],
        stdout=subprocess.PIPE,
        text=True,
        env=tool_env(),
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "leased"
    return proc


def test_publish_stores_each_file_once(showcase_build: Built, tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    a = publish_copy(cache, showcase_build.path, "a" * 32, change=b"one")
    b = publish_copy(cache, showcase_build.path, "b" * 32, change=b"two")
    manifest = Manifest.from_json(json.loads((a / MANIFEST_NAME).read_bytes()))
    for rel, entry in manifest.files.items():
        same = os.stat(a / rel).st_ino == os.stat(b / rel).st_ino
        assert same == (rel != "public/changed.txt"), rel
        blob = cache.blob_path(entry.digest)
        assert os.path.samefile(blob, a / rel)
        assert not os.stat(a / rel).st_mode & 0o222, f"{rel} is writable"
    shared = os.stat(a / "public" / "index.html").st_nlink
    assert shared == 3  # a, b and the blob
    listing = json.loads(run_cli("ls", "--json", cache_dir=cache.root).stdout)
    by_key = {row["key"]: row for row in listing}
    assert by_key["a" * 32]["unique_size"] < by_key["a" * 32]["size"] / 10


def test_a_corrupt_blob_is_never_linked_into_a_new_artifact(
    showcase_build: Built, tmp_path: Path
) -> None:
    cache = Cache(tmp_path / "cache")
    a = publish_copy(cache, showcase_build.path, "a" * 32)
    index = a / "public" / "index.html"
    data = bytearray(index.read_bytes())
    data[10] ^= 0xFF
    os.chmod(index, 0o644)
    index.write_bytes(bytes(data))  # in place: the blob (same inode) rots with it
    b = publish_copy(cache, showcase_build.path, "b" * 32)
    assert not os.path.samefile(a / "public" / "index.html", b / "public" / "index.html")
    assert run_cli("verify", "b" * 8, cache_dir=cache.root).returncode == 0


def test_gc_evicts_lru_first_and_never_what_a_live_host_serves(
    showcase_build: Built, tmp_path: Path
) -> None:
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    # The real artifact under its real key, so a real host serves it (a copy:
    # this test evicts things, the session cache is shared).
    shutil.copytree(showcase_build.path, cache.artifact_dir(showcase_build.key))
    others = [f"{i:032x}" for i in range(1, 5)]
    now = time.time()
    for i, key in enumerate(others):
        publish_copy(cache, showcase_build.path, key, change=os.urandom(200_000))
        _set_last_used(cache, key, now - 1000 + i * 100)  # others[0] is the oldest
    env = {
        "SHOWCASE_PROJECT": str(SHOWCASE),
        "REFLEX_BUILDD_POLICY": "fail",
        "REFLEX_UPLOADED_FILES_DIR": str(tmp_path / "uploads"),
        "REFLEX_STATES_WORKDIR": str(tmp_path / "states"),
    }
    host = spawn_host(HOST, cache_dir=cache.root, log_dir=tmp_path, **env)
    try:
        wait_ready(host, "/admin/")
        # The served artifact is the least recently used of all on paper.
        _set_last_used(cache, showcase_build.key, now - 5000)
        assert live_leases(cache) == {showcase_build.key: 1}
        row = {
            r["key"]: r for r in json.loads(run_cli("ls", "--json", cache_dir=cache.root).stdout)
        }
        assert row[showcase_build.key]["live_hosts"] == 1

        # Each extra artifact holds ~200 kB of its own: a cap that forces two out.
        before = _gc(cache, "--dry-run", "--max-size", "100G")["size_before"]
        assert isinstance(before, int)
        report = _gc(cache, "--max-size", str(before - 300_000))
        assert report["evicted"] == others[:2], report
        assert _keys(cache) == {showcase_build.key, *others[2:]}

        # Even a cap of one byte leaves the leased artifact, and the host serves on.
        report = _gc(cache, "--max-size", "1")
        assert report["kept_pinned"] == [showcase_build.key]
        assert _keys(cache) == {showcase_build.key}
        with urllib.request.urlopen(host.url + "/admin/", timeout=10) as r:
            assert r.status == 200
        evicted = [e["key"] for e in read_journal(cache) if e["event"] == "evicted"]
        assert evicted == others

        # SIGKILL: the lease stays on disk but is stale; the next gc may evict.
        host.process.send_signal(signal.SIGKILL)
        host.process.wait(timeout=10)
        records = read_leases(cache, showcase_build.key)
        assert records and not any(r.alive for r in records)
        report = _gc(cache, "--max-size", "1")
        assert report["evicted"] == [showcase_build.key]
        assert report["leases_removed"] == 1
    finally:
        stop_process(host.process)
    assert _keys(cache) == set()
    # Every blob went with its last artifact.
    assert not any(p.is_file() for p in (cache.base / "blobs").rglob("*"))


def test_leases_of_live_processes_pin_and_end_with_them(
    showcase_build: Built, tmp_path: Path
) -> None:
    cache = Cache(tmp_path / "cache")
    keys = [f"{i:032x}" for i in range(1, 4)]
    for key in keys:
        publish_copy(cache, showcase_build.path, key, change=key.encode())
    holders = [
        _hold_lease(cache, keys[0]),
        _hold_lease(cache, keys[0]),
        _hold_lease(cache, keys[2]),
    ]
    try:
        assert live_leases(cache) == {keys[0]: 2, keys[2]: 1}
        assert _gc(cache, "--max-age", "0s")["evicted"] == [keys[1]]
        holders[0].terminate()  # no release: the process just ends
        holders[0].wait(timeout=10)
        assert live_leases(cache) == {keys[0]: 1, keys[2]: 1}
        assert _gc(cache, "--max-age", "0s")["evicted"] == []
    finally:
        for proc in holders:
            stop_process(proc)
    wait_for(lambda: not live_leases(cache), timeout=10, what="leases to end with their holders")
    assert sorted(_gc(cache, "--max-age", "0s")["evicted"]) == [keys[0], keys[2]]


def test_gc_never_touches_scratch_of_a_live_process(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        here = host_tag()
        live = cache.tmp_dir() / f"build-{'a' * 12}-{sleeper.pid}-0000aaaa-{here}"
        live.mkdir()
        # A dead builder's scratch, quiet for long enough.
        dead = cache.tmp_dir() / f"build-{'b' * 12}-{_dead_pid()}-0000bbbb-{here}"
        dead.mkdir()
        old = time.time() - 3600
        os.utime(dead, (old, old))
        recent = cache.tmp_dir() / f"gc-{'c' * 12}-{_dead_pid()}-0000cccc-{here}"
        recent.mkdir()
        # Another machine sharing the cache: its pids mean nothing here.
        elsewhere = (
            cache.tmp_dir() / f"build-{'d' * 12}-{_dead_pid()}-0000dddd-{host_tag('other-machine')}"
        )
        elsewhere.mkdir()
        os.utime(elsewhere, (old, old))
        other = cache.tmp_dir() / "someone-elses-dir"
        other.mkdir()
        os.utime(other, (old, old))
        report = _gc(cache, "--max-size", "1")
        assert report["scratch_removed"] == [dead.name]
        assert live.exists() and recent.exists() and other.exists() and not dead.exists()
        assert elsewhere.exists()
    finally:
        sleeper.kill()
        sleeper.wait(timeout=10)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=10)
    return proc.pid
