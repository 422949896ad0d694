"""A hostile bucket writer against a real S3 API (moto's server), and a full local disk.

What someone who can write the bucket (but not forge the signing key) can do
to a host that pulls: withhold artifacts, and make it download at most the
bytes the manifest's entries add up to. Oversized blobs are refused before
they are read, hostile manifests are one refusal (exit 4), never a
traceback; a local disk that fills up during a pull is the cache's fault
(exit 5) with the path and what to do.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import obstore
import pytest
from obstore.store import S3Store

from conftest import REPO, Built, tool_env
from reflex_buildd.push import push_artifact
from reflex_buildd_client.cache.manifest import FileEntry
from reflex_buildd_client.cache.store import Artifact, Cache
from reflex_buildd_client.errors import InvalidConfigError, UntrustedArtifactError
from reflex_buildd_client.remote.bucket import (
    RemoteSettings,
    blob_object,
    manifest_object,
    remote_settings,
)
from reflex_buildd_client.remote.envelope import seal
from reflex_buildd_client.remote.pull import remote_lookup
from reflex_buildd_client.settings import Settings, StartupPolicy
from reflex_buildd_client.startup.demand import Demand
from reflex_buildd_client.startup.wait import obtain

pytestmark = pytest.mark.timeout(300)

SIGNING_KEY = "h" * 32
_prefixes = iter(range(1_000_000))


@pytest.fixture
def aws(s3: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
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


def _pushed(s3: Any, artifact: Artifact, tmp_path: Path, signing_key: str | None) -> RemoteSettings:
    settings = remote_settings(
        s3.url(f"hostile{next(_prefixes)}"), signing_key=signing_key, allow_http=True
    )
    assert settings is not None
    push_artifact(Cache(tmp_path / "builder"), artifact, settings)
    return settings


def _raw(s3: Any, settings: RemoteSettings) -> S3Store:
    """The namespace's folder of the bucket, as a writer without the signing key sees it."""
    return S3Store(
        s3.bucket,
        prefix=f"{settings.prefix}/{settings.namespace}",
        endpoint=s3.endpoint,
        region="us-east-1",
        access_key_id="testing",
        secret_access_key="testing",
        client_options={"allow_http": True},
    )


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


def _one_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _nothing_installed(cache: Path, key: str) -> None:
    assert not (cache / "v1" / "artifacts" / key).exists()
    assert not list((cache / "v1" / "tmp").glob("pull-*")), "scratch left behind"


# -- item 3: oversized blobs under a genuine signed manifest ---------------------

_PULL_AND_MEASURE = """
import json, sys
from reflex_buildd_client.cache.store import Cache
from reflex_buildd_client.errors import ReflexBuilddError
from reflex_buildd_client.remote.bucket import remote_settings
from reflex_buildd_client.remote.pull import pull

url, signing_key, cache, key = sys.argv[1:]
try:
    pull(Cache(cache), remote_settings(url, signing_key=signing_key, allow_http=True), key)
    outcome = "pulled"
except ReflexBuilddError as exc:
    outcome = f"{type(exc).__name__}: {exc}"
# VmHWM: this process's own peak RSS. (ru_maxrss would also count the RSS the
# test process had when it forked this one: Linux keeps it across exec.)
status = open("/proc/self/status").read()
peak = int(status.split("VmHWM:")[1].split()[0]) * 1024
print(json.dumps({"outcome": outcome, "peak": peak}))
"""


def _pull_in_child(s3: Any, settings: RemoteSettings, cache: Path, key: str) -> dict[str, Any]:
    """Pull in a fresh process; its outcome and its peak RSS (VmHWM)."""
    result = subprocess.run(
        [sys.executable, "-c", _PULL_AND_MEASURE, settings.url, SIGNING_KEY, str(cache), key],
        capture_output=True,
        text=True,
        timeout=240,
        env=tool_env(**s3.env()),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_oversized_blobs_are_refused_before_they_are_read(
    aws: Any, artifact: Artifact, tmp_path: Path
) -> None:
    settings = _pushed(aws, artifact, tmp_path, SIGNING_KEY)
    baseline = _pull_in_child(aws, settings, tmp_path / "baseline", artifact.key)
    assert baseline["outcome"] == "pulled", baseline

    # Four blobs of the genuine, signed manifest replaced by large objects.
    big = 48 * 1024 * 1024
    raw = _raw(aws, settings)
    digests = sorted({e.digest for e in artifact.manifest.files.values()})[:4]
    for digest in digests:
        obstore.put(raw, blob_object(digest), b"\0" * big)
    attacked = _pull_in_child(aws, settings, tmp_path / "attacked", artifact.key)

    # Reading even one of them whole would add 2 x 48 MiB (obstore's buffer and
    # the Python copy); the bound leaves room for allocator noise only.
    growth = attacked["peak"] - baseline["peak"]
    print(f"peak RSS: baseline {baseline['peak'] >> 20} MiB, attacked {attacked['peak'] >> 20} MiB")
    assert growth < 16 * 1024 * 1024, (baseline, attacked)
    assert attacked["outcome"].startswith("UntrustedArtifactError"), attacked
    assert "longer than the" in attacked["outcome"], attacked
    read = int(re.findall(r"refused after (\d+) bytes", attacked["outcome"])[0])
    assert read <= max(artifact.manifest.files[r].size for r in artifact.manifest.files)
    _nothing_installed(tmp_path / "attacked", artifact.key)


def _with_big_file(artifact: Artifact, root: Path, size: int) -> Artifact:
    """The artifact plus one ``size``-byte file, under the same key and inputs (a
    manifest only a signer can make: the key still names its inputs)."""
    shutil.copytree(artifact.path, root)
    data = os.urandom(1024 * 1024) * (size // (1024 * 1024))
    (root / "public" / "big.bin").write_bytes(data)
    digest = blake3.blake3(data).hexdigest()
    files = {**artifact.manifest.files, "public/big.bin": FileEntry(digest, len(data), "x/y")}
    return Artifact(root, dataclasses.replace(artifact.manifest, files=files))


def test_large_genuine_blobs_stream_through_bounded_memory(
    aws: Any, artifact: Artifact, tmp_path: Path
) -> None:
    small = _pushed(aws, artifact, tmp_path, SIGNING_KEY)
    baseline = _pull_in_child(aws, small, tmp_path / "baseline", artifact.key)
    assert baseline["outcome"] == "pulled", baseline
    big = _with_big_file(artifact, tmp_path / "big-artifact", 96 * 1024 * 1024)
    large = _pushed(aws, big, tmp_path, SIGNING_KEY)
    pulled = _pull_in_child(aws, large, tmp_path / "large", artifact.key)
    assert pulled["outcome"] == "pulled", pulled
    growth = pulled["peak"] - baseline["peak"]
    print(
        f"peak RSS: baseline {baseline['peak'] >> 20} MiB, +96 MiB file {pulled['peak'] >> 20} MiB"
    )
    # Chunks of 1 MiB, not the file: holding it whole once would add 96 MiB.
    assert growth < 16 * 1024 * 1024, (baseline, pulled)


# -- items 4, 9, 11: hostile manifests are one refusal ----------------------------


def _hostile_body(artifact: Artifact, change: str) -> bytes:
    """An unsigned envelope around a manifest changed by ``change`` (inputs kept, so
    the key still matches them)."""
    if change == "deep":
        return b"[" * 100_000 + b"]" * 100_000
    if change == "huge":
        return b'{"format": 1, "pad": "' + b"x" * (17 * 1024 * 1024) + b'"}'
    body = artifact.manifest.to_json()
    files = body["files"]
    some = files["public/404.html"]
    if change == "files-list":
        body["files"] = []
    elif change == "inputs-string":
        body["inputs"] = "x"
    elif change == "created-nan":
        body["created"] = float("nan")
    elif change == "created-infinity":
        body["created"] = float("inf")
    elif change == "created-string":
        body["created"] = "yesterday"
    elif change == "file-dir-conflict":
        files["public/404.html/sub"] = some
    elif change == "long-name":
        files["public/" + "a" * 300 + ".html"] = some
    elif change == "lone-surrogate":
        files["public/\ud800.html"] = some
    # json.dumps writes NaN and Infinity as the bare words Python's json reads back.
    return json.dumps({"format": 1, "manifest": body, "signature": None}).encode()


HOSTILE = [
    "deep",
    "huge",
    "files-list",
    "inputs-string",
    "created-nan",
    "created-infinity",
    "created-string",
    "file-dir-conflict",
    "long-name",
    "lone-surrogate",
]


@pytest.mark.parametrize("change", HOSTILE)
def test_hostile_manifest_is_one_refusal(
    aws: Any, artifact: Artifact, tmp_path: Path, change: str
) -> None:
    settings = _pushed(aws, artifact, tmp_path, None)
    obstore.put(_raw(aws, settings), manifest_object(artifact.key), _hostile_body(artifact, change))
    cache = tmp_path / "host"
    result = _cli(
        "pull", artifact.key, "--cache-dir", str(cache), REFLEX_BUILDD_REMOTE=settings.url
    )
    assert result.returncode == 4, result.stdout + result.stderr
    needle = {"deep": "nested deeper", "huge": "longer than the"}.get(change, "refused")
    _one_error_line(result, needle)
    _nothing_installed(cache, artifact.key)
    # A host with policy `fail` gets the same refusal as an error, not a traceback.
    with pytest.raises(UntrustedArtifactError):
        obtain(
            Demand(
                Cache(cache),
                artifact.key,
                policy=StartupPolicy.FAIL,
                timeout=60,
                remote=remote_lookup(Cache(cache), artifact.key, settings),
            )
        )
    # ls never dies on what the remote holds either.
    listed = _cli("ls", "--remote", REFLEX_BUILDD_REMOTE=settings.url)
    assert listed.returncode == 0 and "REFUSED" in listed.stdout, listed.stderr


def test_signed_manifests_pass_the_same_limits(
    aws: Any, artifact: Artifact, tmp_path: Path
) -> None:
    # The genuine manifest, signed, is well inside the limits.
    settings = _pushed(aws, artifact, tmp_path, SIGNING_KEY)
    data = bytes(obstore.get(_raw(aws, settings), manifest_object(artifact.key)).bytes())
    assert data == seal(artifact.manifest, settings.trust, settings.namespace)
    got = _cli(
        "pull",
        artifact.key,
        "--cache-dir",
        str(tmp_path / "host"),
        REFLEX_BUILDD_REMOTE=settings.url,
        REFLEX_BUILDD_SIGNING_KEY=SIGNING_KEY,
    )
    assert got.returncode == 0, got.stderr


# -- item 10: the remote timeout is a finite number of seconds --------------------


@pytest.mark.parametrize("value", ["inf", "1e999", "nan", "-1", "0", "soon"])
def test_remote_timeout_must_be_finite_and_positive(value: str, tmp_path: Path) -> None:
    environ = {"REFLEX_BUILDD_REMOTE": "s3://b/p", "REFLEX_BUILDD_REMOTE_TIMEOUT": value}
    with pytest.raises(InvalidConfigError, match=r"REFLEX_BUILDD_REMOTE_TIMEOUT.*finite"):
        Settings.load(environ=environ, cache_dir=tmp_path)
    for command in (["status"], ["pull", "0" * 32]):
        result = _cli(*command, "--cache-dir", str(tmp_path), **environ)
        assert result.returncode == 2, result.stdout + result.stderr
        _one_error_line(result, "REFLEX_BUILDD_REMOTE_TIMEOUT", value)


# -- item 14: a disk that fills up during a pull -----------------------------------


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)")
def test_a_full_disk_during_pull_names_the_path_and_what_to_do(
    aws: Any, artifact: Artifact, tmp_path: Path
) -> None:
    settings = _pushed(aws, artifact, tmp_path, None)
    # The artifact takes about 2 MB; the cache's disk has 512 KiB.
    with _tmpfs(tmp_path / "cache", "512k") as cache:
        result = _cli(
            "pull", artifact.key, "--cache-dir", str(cache), REFLEX_BUILDD_REMOTE=settings.url
        )
        assert result.returncode == 5, result.stdout + result.stderr
        line = _one_error_line(result, "No space left on device", "reflex-buildd gc", "--cache-dir")
        assert str(cache / "v1") in line, line
        _nothing_installed(cache, artifact.key)
        # With room, the same command works: nothing half-done stood in the way.
    assert (
        _cli(
            "pull",
            artifact.key,
            "--cache-dir",
            str(tmp_path / "roomy"),
            REFLEX_BUILDD_REMOTE=settings.url,
        ).returncode
        == 0
    )
