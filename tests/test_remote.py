"""The remote tier against a real S3 API (moto's server): trust, races, network faults.

Everything talks HTTP to a moto server on 127.0.0.1 through obstore, as it
would to AWS. The artifact is the session's real showcase build.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import obstore
import pytest
from obstore.exceptions import AlreadyExistsError
from obstore.store import S3Store

from conftest import REPO, Built, tool_env, wait_for
from reflex_buildd.push import push_artifact
from reflex_buildd_client.cache.manifest import FileEntry, Manifest
from reflex_buildd_client.cache.status import read_journal
from reflex_buildd_client.cache.store import Artifact, Cache
from reflex_buildd_client.errors import (
    ArtifactMissingError,
    InvalidConfigError,
    UntrustedArtifactError,
)
from reflex_buildd_client.remote.bucket import (
    RemoteSettings,
    RemoteStore,
    blob_object,
    manifest_object,
    remote_settings,
)
from reflex_buildd_client.remote.pull import fetch_manifest, pull, remote_lookup
from reflex_buildd_client.settings import StartupPolicy
from reflex_buildd_client.startup.demand import Demand
from reflex_buildd_client.startup.wait import obtain

pytestmark = pytest.mark.timeout(120)

KEY_A = "a" * 40
KEY_B = "b" * 40


@pytest.fixture
def aws(s3: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The standard AWS_* variables pointing at the session's moto server."""
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REFLEX_BUILDD_SIGNING_KEY", raising=False)
    monkeypatch.delenv("REFLEX_BUILDD_REMOTE", raising=False)
    return s3


@pytest.fixture
def artifact(showcase_build: Built, cache_dir: Path) -> Artifact:
    found = Cache(cache_dir).open(showcase_build.key)
    assert found is not None
    return found


_prefixes = iter(range(1_000_000))


def _settings(s3: Any, signing_key: str | None = None, **kw: Any) -> RemoteSettings:
    # A local S3 server speaks plain HTTP (AWS_ALLOW_HTTP in a host's settings).
    kw.setdefault("allow_http", True)
    settings = remote_settings(s3.url(f"t{next(_prefixes)}"), signing_key=signing_key, **kw)
    assert settings is not None
    return settings


def _raw(s3: Any, settings: RemoteSettings, namespace: str | None = None) -> S3Store:
    """Direct access to a namespace's folder, as an attacker with write access has."""
    return S3Store(
        s3.bucket,
        prefix=f"{settings.prefix}/{namespace or settings.namespace}",
        endpoint=s3.endpoint,
        region="us-east-1",
        access_key_id="testing",
        secret_access_key="testing",
        client_options={"allow_http": True},
    )


def _nothing_installed(cache: Cache, key: str, bad: bytes | None = None) -> None:
    assert cache.open(key) is None
    assert not cache.artifact_dir(key).exists()
    assert not [p for p in cache.tmp_dir().glob("pull-*")], "scratch left behind"
    if bad is not None:
        for path in cache.root.rglob("*"):
            assert not (path.is_file() and bad in path.read_bytes()), path


# -- the emulator itself ------------------------------------------------------


def test_emulator_enforces_create_only_puts(aws: Any) -> None:
    # Checked first: the tier's "first writer wins" relies on If-None-Match: *.
    raw = _raw(aws, _settings(aws))
    obstore.put(raw, "x", b"one", mode="create")
    with pytest.raises(AlreadyExistsError):
        obstore.put(raw, "x", b"two", mode="create")
    assert bytes(obstore.get(raw, "x").bytes()) == b"one"


def test_settings_are_validated() -> None:
    assert remote_settings("") is None and remote_settings("none") is None
    for bad in ("http://bucket/x", "s3://", "bucket/prefix", "s3://b/p?x=1"):
        with pytest.raises(InvalidConfigError, match="s3://bucket/prefix"):
            remote_settings(bad)
    with pytest.raises(InvalidConfigError, match="at least 16"):
        remote_settings("s3://b/p", signing_key="short")
    settings = remote_settings("s3://b/a/b/", signing_key="k" * 32)
    assert settings is not None and (settings.bucket, settings.prefix) == ("b", "a/b")
    assert "k" * 32 not in repr(settings)
    # Read with every other REFLEX_BUILDD_* variable, once, by Settings.
    from reflex_buildd_client.settings import Settings

    environ = {
        "REFLEX_BUILDD_REMOTE": "s3://b/env",
        "REFLEX_BUILDD_SIGNING_KEY": "k" * 32,
        "REFLEX_BUILDD_REMOTE_TIMEOUT": "7",
    }
    loaded = Settings.load(environ=environ, cache_dir="/tmp/x")
    assert loaded.remote_tier == RemoteSettings("s3://b/env", b"k" * 32, 7.0)
    assert "k" * 32 not in repr(loaded)
    assert Settings.load(environ=environ, cache_dir="/x", remote="none").remote_tier is None
    with pytest.raises(InvalidConfigError, match="REFLEX_BUILDD_REMOTE_TIMEOUT"):
        Settings.load(environ={**environ, "REFLEX_BUILDD_REMOTE_TIMEOUT": "soon"}, cache_dir="/x")


# -- push and pull ------------------------------------------------------------


def test_push_then_pull_round_trip(aws: Any, artifact: Artifact, tmp_path: Path) -> None:
    settings = _settings(aws, signing_key="s" * 32)
    first = push_artifact(Cache(tmp_path / "a"), artifact, settings)
    assert first.manifest_written and first.blobs_sent > 0 and first.blobs_skipped == 0
    unique = {e.digest: e.size for e in artifact.manifest.files.values()}
    assert first.blobs_sent == len(unique) and first.bytes_sent == sum(unique.values())
    again = push_artifact(Cache(tmp_path / "a"), artifact, settings)
    assert not again.manifest_written and again.blobs_sent == 0

    machine_b = Cache(tmp_path / "b")
    pulled = pull(machine_b, settings, artifact.key)
    assert pulled is not None and pulled.manifest == artifact.manifest
    for rel, entry in artifact.manifest.files.items():
        data = (pulled.path / rel).read_bytes()
        assert blake3.blake3(data).hexdigest() == entry.digest
        # Installed like a build: shared through the local blob store.
        assert (pulled.path / rel).stat().st_nlink >= 2
    assert pull(Cache(tmp_path / "c"), settings, "0" * 32) is None


def test_second_push_after_a_small_change_sends_only_new_blobs(
    aws: Any, artifact: Artifact, tmp_path: Path
) -> None:
    settings = _settings(aws)
    push_artifact(Cache(tmp_path), artifact, settings)
    other = _variant(artifact, tmp_path / "variant", KEY_A, changed=1)
    report = push_artifact(Cache(tmp_path), other, settings)
    assert report.manifest_written and report.blobs_sent == 1
    assert report.blobs_skipped == len({e.digest for e in other.manifest.files.values()}) - 1


def _variant(artifact: Artifact, root: Path, key: str, *, changed: int = 0) -> Artifact:
    """A copy of ``artifact`` under another key (inputs left alone: tests that do not
    check the inputs' key use it), with ``changed`` files given new bytes."""
    shutil.copytree(artifact.path, root)
    files = dict(artifact.manifest.files)
    for rel in sorted(files)[:changed]:
        path = root / rel
        path.chmod(0o644)
        data = path.read_bytes() + b"\n/* changed */"
        path.write_bytes(data)
        files[rel] = FileEntry(blake3.blake3(data).hexdigest(), len(data), files[rel].content_type)
    manifest = Manifest(
        key=key,
        created=time.time(),
        project=artifact.manifest.project,
        inputs=artifact.manifest.inputs,
        build=artifact.manifest.build,
        files=files,
        routes=artifact.manifest.routes,
    )
    (root / "manifest.json").write_text(json.dumps(manifest.to_json()))
    return Artifact(root, manifest)


# -- trust ----------------------------------------------------------------------


def test_tampered_blob_is_refused(aws: Any, artifact: Artifact, tmp_path: Path) -> None:
    settings = _settings(aws)
    push_artifact(Cache(tmp_path / "a"), artifact, settings)
    rel, entry = next((r, e) for r, e in sorted(artifact.manifest.files.items()) if e.size > 100)
    evil = b"<script>alert('owned')</script>".ljust(entry.size, b" ")
    obstore.put(_raw(aws, settings), blob_object(entry.digest), evil)
    cache = Cache(tmp_path / "b")
    with pytest.raises(UntrustedArtifactError, match=f"{rel}.*does not match"):
        pull(cache, settings, artifact.key)
    _nothing_installed(cache, artifact.key, bad=b"alert('owned')")


def test_tampered_signed_manifest_is_refused(aws: Any, artifact: Artifact, tmp_path: Path) -> None:
    settings = _settings(aws, signing_key="s" * 32)
    push_artifact(Cache(tmp_path / "a"), artifact, settings)
    # The CREEP attack: upload bytes of one's own under their true digest and
    # point the trusted manifest at them.
    evil = b"alert('owned')"
    digest = blake3.blake3(evil).hexdigest()
    raw = _raw(aws, settings)
    obstore.put(raw, blob_object(digest), evil)
    envelope = json.loads(bytes(obstore.get(raw, manifest_object(artifact.key)).bytes()))
    target = next(r for r in envelope["manifest"]["files"] if r.endswith(".js"))
    envelope["manifest"]["files"][target].update(digest=digest, size=len(evil))
    obstore.put(raw, manifest_object(artifact.key), json.dumps(envelope).encode())
    cache = Cache(tmp_path / "b")
    with pytest.raises(UntrustedArtifactError, match="changed after signing"):
        pull(cache, settings, artifact.key)
    _nothing_installed(cache, artifact.key, bad=evil)


def test_unsigned_artifact_is_refused_when_hosts_have_a_key(
    aws: Any, artifact: Artifact, tmp_path: Path
) -> None:
    unsigned = _settings(aws)
    push_artifact(Cache(tmp_path / "a"), artifact, unsigned)
    host = RemoteSettings(unsigned.url, signing_key=b"h" * 32, allow_http=True)
    cache = Cache(tmp_path / "b")
    with pytest.raises(UntrustedArtifactError, match="unsigned and REFLEX_BUILDD_SIGNING_KEY"):
        pull(cache, host, artifact.key)
    _nothing_installed(cache, artifact.key)


def test_wrongly_signed_artifact_is_refused(aws: Any, artifact: Artifact, tmp_path: Path) -> None:
    builder = _settings(aws, signing_key="b" * 32)
    push_artifact(Cache(tmp_path / "a"), artifact, builder)
    host = RemoteSettings(builder.url, signing_key=b"h" * 32, allow_http=True)
    cache = Cache(tmp_path / "b")
    with pytest.raises(UntrustedArtifactError, match="not signed by this host's key"):
        pull(cache, host, artifact.key)
    _nothing_installed(cache, artifact.key)
    # The right key accepts the very same objects.
    assert pull(cache, builder, artifact.key) is not None


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ("other-inputs", "describes other sources"),
        ("other-key", "is the manifest of"),
        ("escaping-path", "outside the artifact"),
        ("not-json", "unreadable"),
    ],
)
def test_manifests_that_lie_are_refused_even_unsigned(
    aws: Any, artifact: Artifact, tmp_path: Path, change: str, error: str
) -> None:
    settings = _settings(aws)
    push_artifact(Cache(tmp_path / "a"), artifact, settings)
    raw = _raw(aws, settings)
    body = artifact.manifest.to_json()
    if change == "other-inputs":
        body["inputs"]["files"]["showcase/showcase.py"] = "0" * 64
    elif change == "other-key":
        body["key"] = KEY_B
    elif change == "escaping-path":
        entry = next(iter(body["files"].values()))
        body["files"]["public/../../../../etc/cron.d/x"] = entry
    # Sealed by hand: Manifest.from_json itself refuses the escaping path.
    envelope = {"format": 1, "manifest": body, "signature": None}
    data = b"{nope" if change == "not-json" else json.dumps(envelope).encode()
    obstore.put(raw, manifest_object(artifact.key), data)
    cache = Cache(tmp_path / "b")
    with pytest.raises(UntrustedArtifactError, match=error):
        pull(cache, settings, artifact.key)
    _nothing_installed(cache, artifact.key)


# -- racing writers, and a reader during uploads ----------------------------------


def test_racing_writers_one_manifest_wins_and_readers_never_see_a_partial(
    aws: Any, artifact: Artifact, tmp_path: Path
) -> None:
    settings = _settings(aws)
    # Two builders of one key whose artifacts differ (as two builds do: their
    # manifests' creation times), pushing at once from two processes.
    caches = []
    for name in ("one", "two"):
        cache = Cache(tmp_path / name)
        cache.ensure()
        copy = _variant(artifact, cache.artifact_dir(artifact.key), artifact.key)
        assert copy.manifest.created != artifact.manifest.created
        caches.append(cache)
    seen: list[str] = []
    stop = threading.Event()
    failures: list[BaseException] = []

    def read() -> None:
        reader = Cache(tmp_path / "reader")
        while not stop.is_set():
            try:
                got = pull(reader, settings, artifact.key)
            except BaseException as exc:  # any error is a partial artifact seen
                failures.append(exc)
                return
            seen.append("miss" if got is None else "hit")
            if got is not None:
                return

    thread = threading.Thread(target=read)
    thread.start()
    procs = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "reflex_buildd", "push", artifact.key, "--json"),
                *("--cache-dir", str(c.root), "--remote", settings.url),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=tool_env(),
            cwd=REPO,
        )
        for c in caches
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    wait_for(lambda: not thread.is_alive() or None, timeout=30, what="the reader")
    stop.set()
    thread.join(timeout=10)
    assert [p.returncode for p in procs] == [0, 0], outs
    reports = [json.loads(out.decode().strip().splitlines()[-1]) for out, _err in outs]
    assert sorted(r["manifest_written"] for r in reports) == [False, True]
    assert not failures, failures
    assert seen and seen[-1] == "hit"
    store = RemoteStore(settings)
    winner = fetch_manifest(store, artifact.key)
    created = {Cache(c.root).open(artifact.key).manifest.created for c in caches}  # type: ignore[union-attr]
    assert winner is not None and winner.created in created
    assert store.keys() == [artifact.key]


# -- network faults -------------------------------------------------------------


@contextlib.contextmanager
def _fake_endpoint(mode: str) -> Iterator[str]:
    """An endpoint that never answers (``hang``) or always says 503 SlowDown (``throttle``)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            held.append(conn)
            if mode == "throttle":
                with contextlib.suppress(OSError):
                    conn.settimeout(2)
                    conn.recv(65536)
                    body = b"<Error><Code>SlowDown</Code></Error>"
                    conn.sendall(
                        b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
                        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                        + body
                    )
                    conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        server.close()


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("fault", ["down", "hang", "throttle"])
def test_unreachable_remote_falls_back_with_one_log_line(
    aws: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fault: str,
) -> None:
    timeout = 3.0
    with contextlib.ExitStack() as stack:
        endpoint = _closed_port() if fault == "down" else stack.enter_context(_fake_endpoint(fault))
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        settings = _settings(aws, timeout=timeout)
        cache = Cache(tmp_path)
        caplog.set_level(logging.WARNING, logger="reflex_buildd")
        started = time.monotonic()
        with pytest.raises(ArtifactMissingError):
            obtain(
                Demand(
                    cache,
                    KEY_A,
                    policy=StartupPolicy.FAIL,
                    timeout=60,
                    remote=remote_lookup(cache, KEY_A, settings),
                )
            )
        elapsed = time.monotonic() - started
    lines = [r.getMessage() for r in caplog.records if "remote cache unavailable" in r.getMessage()]
    assert len(lines) == 1, caplog.records
    assert settings.url in lines[0]
    # Bounded by the remote's timeout (plus one retry backoff), not the startup timeout.
    assert elapsed < timeout + 3, elapsed


class _CuttableProxy:
    """A TCP relay to the S3 endpoint that slows responses down and can be cut (the
    endpoint going away mid-download)."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self._upstream = (host, int(port))
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self._server.settimeout(0.2)
        self._conns: list[socket.socket] = []
        self.cut = threading.Event()
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.cut.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                continue
            upstream = socket.create_connection(self._upstream)
            self._conns += [client, upstream]
            threading.Thread(target=self._relay, args=(client, upstream, 0), daemon=True).start()
            threading.Thread(target=self._relay, args=(upstream, client, 0.02), daemon=True).start()

    def _relay(self, src: socket.socket, dst: socket.socket, delay: float) -> None:
        with contextlib.suppress(OSError):
            while not self.cut.is_set():
                data = src.recv(16384)
                if not data:
                    break
                time.sleep(delay)
                dst.sendall(data)

    def close(self) -> None:
        self.cut.set()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._server.close()


def test_endpoint_stopped_mid_download_falls_back(
    aws: Any,
    artifact: Artifact,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = _settings(aws, timeout=8.0)
    push_artifact(Cache(tmp_path / "a"), artifact, settings)
    proxy = _CuttableProxy(aws.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    cache = Cache(tmp_path / "b")
    caplog.set_level(logging.WARNING, logger="reflex_buildd")
    result: list[object] = []

    def run() -> None:
        try:
            result.append(
                obtain(
                    Demand(
                        cache,
                        artifact.key,
                        policy=StartupPolicy.FAIL,
                        timeout=60,
                        remote=remote_lookup(cache, artifact.key, settings),
                    )
                )
            )
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=run)
    started = time.monotonic()
    thread.start()
    try:
        # Some files are down, the rest still on the way: cut the endpoint.
        wait_for(
            lambda: any(p.is_file() for p in cache.tmp_dir().glob("pull-*/public/**/*")),
            timeout=30,
            what="the first downloaded file",
            interval=0.005,
        )
    finally:
        proxy.close()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert isinstance(result[0], ArtifactMissingError), result
    assert time.monotonic() - started < settings.timeout + 5
    lines = [r.getMessage() for r in caplog.records if "remote cache unavailable" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    _nothing_installed(cache, artifact.key)


# -- the command line -------------------------------------------------------------


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reflex_buildd", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=tool_env(**env),
        cwd=REPO,
        check=False,
    )


def test_cli_push_ls_status_pull(
    aws: Any, showcase_build: Built, cache_dir: Path, tmp_path: Path
) -> None:
    settings = _settings(aws)
    env = {"REFLEX_BUILDD_REMOTE": settings.url, "REFLEX_BUILDD_SIGNING_KEY": "c" * 32}
    pushed = _cli("push", showcase_build.key[:10], "--cache-dir", str(cache_dir), **env)
    assert pushed.returncode == 0, pushed.stderr
    assert "pushed" in pushed.stderr and pushed.stdout.strip() == showcase_build.key
    listed = _cli("ls", "--remote", "--json", **env)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["key"], r["trusted"], r["project"]) for r in rows] == [
        (showcase_build.key, True, "showcase")
    ]
    other_key = _cli("ls", "--remote", **{**env, "REFLEX_BUILDD_SIGNING_KEY": "d" * 32})
    assert "REFUSED" in other_key.stdout and "not signed by this host's key" in other_key.stdout

    machine_b = tmp_path / "b"
    got = _cli("pull", showcase_build.key, "--cache-dir", str(machine_b), **env)
    assert got.returncode == 0, got.stderr
    assert _cli("verify", "--cache-dir", str(machine_b)).returncode == 0
    refused = _cli(
        "pull",
        showcase_build.key,
        "--cache-dir",
        str(tmp_path / "c"),
        **{**env, "REFLEX_BUILDD_SIGNING_KEY": "d" * 32},
    )
    assert refused.returncode == 4 and "refused" in refused.stderr
    missing = _cli("pull", "0" * 32, "--cache-dir", str(tmp_path / "c"), **env)
    assert missing.returncode == 2 and "no artifact" in missing.stderr

    status = _cli("status", "--json", "--cache-dir", str(machine_b), **env)
    remote = json.loads(status.stdout)["remote"]
    assert remote["url"] == settings.url and remote["reachable"] and remote["artifacts"] == 1
    assert remote["signed"] and remote["events"]["pulled"] == 1
    down = _cli(
        "status",
        "--cache-dir",
        str(machine_b),
        **{**env, "AWS_ENDPOINT_URL": _closed_port(), "REFLEX_BUILDD_REMOTE_TIMEOUT": "2"},
    )
    assert down.returncode == 0 and "UNREACHABLE" in down.stdout
    unreachable = _cli(
        "push",
        showcase_build.key,
        "--cache-dir",
        str(cache_dir),
        **{**env, "AWS_ENDPOINT_URL": _closed_port(), "REFLEX_BUILDD_REMOTE_TIMEOUT": "2"},
    )
    assert unreachable.returncode == 5 and "failed" in unreachable.stderr


def test_daemon_pulls_a_key_the_remote_has_and_pushes_what_it_has(
    aws: Any, artifact: Artifact, cache_dir: Path, tmp_path: Path
) -> None:
    from conftest import SHOWCASE, run_daemon

    # Pull: an empty cache, the remote has the key: no build, one pull.
    source = _settings(aws)
    push_artifact(Cache(tmp_path / "seed"), artifact, source)
    empty = tmp_path / "daemon-cache"
    log = tmp_path / "daemon.log"
    with run_daemon(SHOWCASE, cache_dir=empty, log=log, REFLEX_BUILDD_REMOTE=source.url):
        wait_for(
            lambda: Cache(empty).open(artifact.key),
            timeout=60,
            what=f"the pulled artifact\n{log.read_text(errors='replace')}",
        )
    events = [e["event"] for e in read_journal(Cache(empty))]
    assert "pulled" in events and "start" not in events, events
    assert "pulled from the remote" in log.read_text()

    # Push: the session's cache has the key, a fresh remote does not.
    target = _settings(aws)
    store = RemoteStore(target)
    with run_daemon(
        SHOWCASE, cache_dir=cache_dir, log=tmp_path / "d2.log", REFLEX_BUILDD_REMOTE=target.url
    ):
        wait_for(
            lambda: store.exists(manifest_object(artifact.key)),
            timeout=60,
            what="the daemon's push",
        )
    assert fetch_manifest(store, artifact.key) == artifact.manifest


def test_gc_removes_the_scratch_of_a_dead_puller(tmp_path: Path) -> None:
    from reflex_buildd.gc import SCRATCH_GRACE, clean_scratch
    from reflex_buildd_client.remote.pull import _scratch

    cache = Cache(tmp_path)
    cache.ensure()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=30)
    mine = _scratch(cache, KEY_A)  # the name a pull in this process uses
    theirs = mine.with_name(mine.name.replace(f"-{os.getpid()}-", f"-{dead.pid}-"))
    for path in (mine, theirs):
        (path / "public").mkdir(parents=True)
        old = time.time() - SCRATCH_GRACE - 60
        os.utime(path / "public", (old, old))
        os.utime(path, (old, old))
    assert clean_scratch(cache, now=time.time()) == [theirs.name]
    assert mine.exists() and not theirs.exists()
