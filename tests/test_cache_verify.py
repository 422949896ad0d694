"""A flipped byte is caught by ``verify`` and by the client; quarantined artifacts
are rebuilt on the next demand (real builds, a real host)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import SHOWCASE, Built, run_cli, run_host
from reflex_buildd_client import CorruptArtifactError, ReflexMount
from reflex_buildd_client.cache.status import read_journal
from reflex_buildd_client.cache.store import Cache
from reflex_buildd_client.cache.verify import verify_artifact

pytestmark = pytest.mark.slow

HOST = "examples.hosts.fastapi_host:app"


def _private_copy(built: Built, tmp_path: Path) -> Cache:
    """A cache of its own holding a copy of the session's showcase artifact."""
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    shutil.copytree(built.path, cache.artifact_dir(built.key))
    return cache


def _flip_a_byte(artifact: Path) -> str:
    """Flip one byte in the middle of the biggest JS file; return its path."""
    victim = max((artifact / "public" / "assets").glob("*.js"), key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    os.chmod(victim, 0o644)  # published files are read-only (and shared): this is the point
    victim.write_bytes(bytes(data))
    return victim.relative_to(artifact).as_posix()


def _quarantined(cache: Cache) -> list[Path]:
    return (
        sorted((cache.base / "quarantine").glob("*"))
        if (cache.base / "quarantine").exists()
        else []
    )


def test_verify_catches_a_flipped_byte_and_quarantines(
    showcase_build: Built, tmp_path: Path
) -> None:
    cache = _private_copy(showcase_build, tmp_path)
    assert run_cli("verify", cache_dir=cache.root).returncode == 0
    rel = _flip_a_byte(cache.artifact_dir(showcase_build.key))
    # Same size: only a re-hash can tell.
    assert cache.open(showcase_build.key) is not None

    result = run_cli("verify", showcase_build.key[:10], "--json", cache_dir=cache.root)
    assert result.returncode == 4, result.stderr
    (verdict,) = json.loads(result.stdout)
    assert verdict["ok"] is False and verdict["problems"] == {rel: "does not match its digest"}
    assert not cache.artifact_dir(showcase_build.key).exists()
    (moved,) = _quarantined(cache)
    assert verdict["quarantined"] == str(moved)
    assert json.loads((moved / "QUARANTINE.json").read_text())["key"] == showcase_build.key
    assert rel in result.stderr
    assert run_cli("verify", cache_dir=cache.root).returncode == 0  # nothing corrupt is left
    unknown = run_cli("verify", "ffff", cache_dir=cache.root)
    assert unknown.returncode == 2 and "no artifact" in unknown.stderr


def test_the_client_refuses_a_corrupt_artifact_and_it_is_rebuilt_on_demand(
    showcase_build: Built, tmp_path: Path
) -> None:
    cache = _private_copy(showcase_build, tmp_path)
    key = showcase_build.key
    rel = _flip_a_byte(cache.artifact_dir(key))

    # Policy fail: a clear error naming the file, and the artifact is out of the way.
    mount = ReflexMount(SHOWCASE, cache_dir=cache.root, policy="fail", timeout=30)
    with pytest.raises(CorruptArtifactError) as caught:
        mount.open_artifact()
    message = str(caught.value)
    assert rel in message and "quarantine" in message and "reflex-buildd build" in message
    assert not cache.artifact_dir(key).exists()
    assert len(_quarantined(cache)) == 1

    # The next demand rebuilds it.
    result = run_cli("build", str(SHOWCASE), "--json", cache_dir=cache.root)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {
        **json.loads(result.stdout.splitlines()[-1]),
        "key": key,
        "built": True,
    }
    rebuilt = cache.open(key)
    assert rebuilt is not None
    verify_artifact(rebuilt)

    # A host with policy build meets a corrupt artifact: quarantine, rebuild, serve.
    rotten = _flip_a_byte(cache.artifact_dir(key))
    env = {
        "SHOWCASE_PROJECT": str(SHOWCASE),
        "REFLEX_BUILDD_POLICY": "build",
        "REFLEX_UPLOADED_FILES_DIR": str(tmp_path / "uploads"),
        "REFLEX_STATES_WORKDIR": str(tmp_path / "states"),
    }
    published_before = sum(1 for e in read_journal(cache) if e["event"] == "published")
    with run_host(
        HOST, cache_dir=cache.root, log_dir=tmp_path, ready_path="/admin/", timeout=180, **env
    ) as host:
        log = host.output()
    assert "corrupt" in log and "obtaining it again" in log
    published = sum(1 for e in read_journal(cache) if e["event"] == "published")
    assert published == published_before + 1
    assert len(_quarantined(cache)) == 2
    again = cache.open(key)
    assert again is not None and again.manifest.created > rebuilt.manifest.created
    verify_artifact(again)
    assert run_cli("verify", cache_dir=cache.root).returncode == 0
    # The rotten bytes left the blob store with the artifact: nothing links them again.
    latest = max(_quarantined(cache), key=lambda p: p.stat().st_mtime)
    digest = json.loads((latest / "manifest.json").read_text())["files"][rotten]["digest"]
    blob = cache.blob_path(digest)
    assert not blob.exists() or not os.path.samefile(blob, latest / rotten)
