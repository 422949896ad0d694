"""Hostile manifests already in a local cache: parsed within limits, never a traceback.

Whoever can write the cache directory can leave any bytes in
``artifacts/<key>/manifest.json``. The bounded parse (:mod:`.boundedjson`)
and the typed reading of every field turn each of them into one
:class:`CorruptArtifactError`: ``ls``, ``status`` and ``gc`` skip it,
``verify`` reports and quarantines it (exit 4), a host with policy ``fail``
gets a clear error naming the command that rebuilds it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, tool_env
from reflex_buildd_client.cache.manifest import Manifest
from reflex_buildd_client.cache.store import Cache
from reflex_buildd_client.errors import CorruptArtifactError
from reflex_buildd_client.keys.schema import KeyInputs, key_of
from reflex_buildd_client.settings import StartupPolicy
from reflex_buildd_client.startup.checkout import checkout
from reflex_buildd_client.startup.demand import Demand

pytestmark = pytest.mark.timeout(120)

INPUTS = KeyInputs(files={"app/app.py": "0" * 64})
KEY = key_of(INPUTS)


def _good() -> dict[str, object]:
    return Manifest(
        key=KEY,
        created=1_700_000_000.0,
        project={"root": "/p", "app_name": "app"},
        inputs=INPUTS,
        build={"reflex": "0.10.1"},
        files={},
    ).to_json()


def _hostile(change: str) -> bytes:
    if change == "deep":
        return b"[" * 100_000 + b"]" * 100_000
    if change == "deep-object":
        return b'{"a":' * 50_000 + b"1" + b"}" * 50_000
    if change == "huge":
        return b'{"pad": "' + b"x" * (17 * 1024 * 1024) + b'"}'
    body = _good()
    if change == "files-list":
        body["files"] = []
    elif change == "inputs-string":
        body["inputs"] = "x"
    elif change == "inputs-files-list":
        body["inputs"] = {"files": [1, 2]}
    elif change == "created-nan":
        body["created"] = float("nan")
    elif change == "created-huge":
        body["created"] = 1e300
    elif change == "created-string":
        body["created"] = "1700000000"
    elif change == "entry-not-object":
        body["files"] = {"public/index.html": "x"}
    elif change == "build-nested":
        body["build"] = {"js_runtime": {"a": [1]}}
    elif change == "size-negative":
        body["files"] = {"public/a": {"digest": "0" * 64, "size": -1, "type": "text/plain"}}
    return json.dumps(body).encode()


CHANGES = [
    "deep",
    "deep-object",
    "huge",
    "files-list",
    "inputs-string",
    "inputs-files-list",
    "created-nan",
    "created-huge",
    "created-string",
    "entry-not-object",
    "build-nested",
    "size-negative",
]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reflex_buildd", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=tool_env(),
        cwd=REPO,
        check=False,
    )


def _plant(cache: Cache, data: bytes) -> Path:
    """A manifest left in the cache by someone who could write it."""
    cache.ensure()
    path = cache.manifest_path(KEY)
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("change", CHANGES)
def test_a_hostile_local_manifest_is_one_corrupt_artifact(tmp_path: Path, change: str) -> None:
    cache = Cache(tmp_path / "cache")
    path = _plant(cache, _hostile(change))
    with pytest.raises(CorruptArtifactError, match="manifest"):
        cache.open(KEY)

    for command in (["ls"], ["ls", "--json"], ["status"], ["gc", "--dry-run"]):
        result = _cli(*command, "--cache-dir", str(cache.root))
        assert result.returncode == 0, (command, result.stderr)
        assert "Traceback" not in result.stderr
    verify = _cli("verify", "--cache-dir", str(cache.root))
    assert verify.returncode == 4, verify.stdout + verify.stderr
    assert "Traceback" not in verify.stderr
    assert not path.exists(), "verify quarantines it"

    # A host with policy `fail`: the error says what is wrong and what to run.
    _plant(cache, _hostile(change))
    with pytest.raises(CorruptArtifactError, match="rebuild it with"):
        checkout(Demand(cache, KEY, policy=StartupPolicy.FAIL, timeout=10))


def test_the_limits_themselves() -> None:
    from reflex_buildd_client.cache.boundedjson import load_bounded, nesting_depth_exceeds

    assert not nesting_depth_exceeds(b'{"a": [1, {"b": "[[[[[[[[[["}]}', 3)
    assert nesting_depth_exceeds(b"[[[[]]]]", 3)
    assert not nesting_depth_exceeds(b"[[[]]]", 3)
    assert nesting_depth_exceeds(b"[[[" + b"],[" * 10 + b"]]]", 2)
    # Brackets inside strings, escaped quotes included, do not count.
    assert not nesting_depth_exceeds(b'["\\"[[[[[[", "]]]]"]', 2)
    for bad, why in [
        (b"x" * 11, "more than the 10"),
        (b"[[[[1]]]]", "nested deeper"),
        (b'{"a": NaN}', "NaN"),
        (b"[Infinity]", "Infinity"),
        (b"\xff", "not UTF-8|Expecting value"),
    ]:
        with pytest.raises(ValueError, match=why):
            load_bounded(bad, max_bytes=10, max_depth=3)
    assert load_bounded(b'{"a": [1.5]}', max_bytes=100, max_depth=2) == {"a": [1.5]}
    # The genuine manifest of a build parses unchanged.
    good = json.dumps(_good()).encode()
    assert Manifest.from_bytes(good).to_json() == _good()
