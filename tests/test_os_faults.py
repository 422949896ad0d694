"""Faults of the machine, for real: unreadable project files, a cache under a
file, a full disk while publishing. Each gives one line naming the path and
the cause, the documented exit code and no traceback (unless ``--debug``); a
full disk still leaves a failure record, never a ``building`` one.

Root ignores file modes, so as root (CI) the CLI runs with the capabilities
that bypass them dropped (``setpriv``); the full disk is a real tmpfs.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from filelock import Timeout

from conftest import REPO, tool_env
from reflex_buildd.build import BuildCancelledError, SourcesChangedError
from reflex_buildd.daemon import DaemonAlreadyRunningError
from reflex_buildd.exits import BAD_INPUT, BUSY, CACHE_FAULT, as_error, exit_code_of
from reflex_buildd.plugin import PatchError
from reflex_buildd.rebuild import InputsMovedOnError
from reflex_buildd.workspace import WorkspaceBusyError
from reflex_buildd_client import errors
from reflex_buildd_client.errors import CacheIOError, InputReadError, ReflexBuilddError

SECOND_APP = REPO / "tests" / "fixtures" / "second_app" / "project"
# Without these two capabilities root obeys file modes like anyone else.
_CAPS = "-dac_override,-dac_read_search"
_MODES_APPLY = (
    ["setpriv", f"--inh-caps={_CAPS}", f"--bounding-set={_CAPS}", "--"] if os.geteuid() == 0 else []
)


def _cli(
    *args: str, cache: Path, modes_apply: bool = False, **env: str
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "reflex_buildd", *args, "--cache-dir", str(cache)]
    return subprocess.run(
        (_MODES_APPLY if modes_apply else []) + command,
        capture_output=True,
        text=True,
        timeout=300,
        env=tool_env(**env),
        cwd=REPO,
        check=False,
    )


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "proj"
    shutil.copytree(SECOND_APP, project, ignore=shutil.ignore_patterns("__pycache__"))
    return project


def _one_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("unreadable", ["rxconfig.py", "second_app/second_app.py"])
@pytest.mark.parametrize("command", ["key", "build"])
def test_an_unreadable_project_file_is_bad_input(
    tmp_path: Path, unreadable: str, command: str
) -> None:
    project = _project(tmp_path)
    (project / unreadable).chmod(0)
    result = _cli(command, str(project), cache=tmp_path / "cache", modes_apply=True)
    assert result.returncode == BAD_INPUT, result.stdout + result.stderr
    _one_error_line(result, str(project / unreadable), "Permission denied")


def test_a_cache_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    cache = tmp_path / "file" / "cache"
    # (``key`` still answers: a stat cache it cannot write is no stat cache.)
    result = _cli("build", str(SECOND_APP), cache=cache)
    assert result.returncode == CACHE_FAULT, result.stdout + result.stderr
    _one_error_line(result, str(cache), "Not a directory")
    for debug in (
        _cli("--debug", "build", str(SECOND_APP), cache=cache),
        _cli("build", str(SECOND_APP), cache=cache, REFLEX_BUILDD_DEBUG="1"),
    ):
        assert debug.returncode == CACHE_FAULT
        assert "Traceback" in debug.stderr and "NotADirectoryError" in debug.stderr


def test_an_unwritable_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o555)
    result = _cli("build", str(SECOND_APP), cache=cache, modes_apply=True)
    assert result.returncode == CACHE_FAULT, result.stdout + result.stderr
    _one_error_line(result, str(cache), "Permission denied")


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


@contextlib.contextmanager
def _tiny_cache(tmp_path: Path, size: str) -> Iterator[Path]:
    """A cache on a tmpfs of ``size``, its workspaces (node_modules) on the real disk."""
    cache, work = tmp_path / "cache", tmp_path / "work"
    cache.mkdir()
    work.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(cache)], check=True)
    try:
        (cache / "v1" / "work").mkdir(parents=True)
        subprocess.run(["mount", "--bind", str(work), str(cache / "v1" / "work")], check=True)
        try:
            yield cache
        finally:
            subprocess.run(["umount", str(cache / "v1" / "work")], check=True)
    finally:
        subprocess.run(["umount", str(cache)], check=True)


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)")
def test_no_space_while_publishing_is_recorded(tmp_path: Path) -> None:
    project = _project(tmp_path)
    with _tiny_cache(tmp_path, "256k") as cache:
        key = _cli("key", str(project), cache=cache).stdout.strip()
        result = _cli("build", str(project), cache=cache)
        assert result.returncode == CACHE_FAULT, result.stdout + result.stderr
        _one_error_line(result, str(cache), "No space left on device")
        record = json.loads((cache / "v1" / "status" / f"{key}.json").read_text())
        assert record["state"] == "failed", record
        assert "No space left on device" in record["tail"]
        assert not any((cache / "v1" / "artifacts").iterdir())
        assert not any((cache / "v1" / "tmp").iterdir()), "scratch left on a full disk"
        # A host waiting for this key fails at once with the cause.
        from reflex_buildd_client.cache.status import BuildState, read_status
        from reflex_buildd_client.cache.store import Cache

        assert read_status(Cache(cache), key).state is BuildState.FAILED


def _instances() -> list[BaseException]:
    return [
        errors.ProjectNotFoundError("no project"),
        errors.InvalidPathError("bad path"),
        errors.ArtifactMissingError("missing", key="k1"),
        errors.CorruptArtifactError("corrupt"),
        errors.BuildFailedError("failed", key="k2", log_tail="tail", exit_code=3),
        errors.JSRuntimeNotFoundError("no bun"),
        errors.WaitTimeoutError("waited", key="k3"),
        errors.InputsConfigError("bad inputs"),
        errors.InvalidConfigError("bad config"),
        errors.LockTimeoutError("lock busy"),
        errors.ReadOnlyCacheError("read-only", key="k4"),
        errors.UntrustedArtifactError("refused", reason="untrusted-signer"),
        errors.PushRefusedError("public keys only"),
        CacheIOError(28, "No space left on device", "/cache/v1/tmp/x"),
        InputReadError(13, "Permission denied", "/proj/rxconfig.py"),
        PatchError("cannot patch"),
        SourcesChangedError("changed", key="k5"),
        BuildCancelledError("superseded"),
        DaemonAlreadyRunningError("another daemon"),
        InputsMovedOnError("moved on"),
        WorkspaceBusyError("still alive"),
    ]


@pytest.mark.parametrize("error", _instances(), ids=lambda e: type(e).__name__)
def test_errors_survive_pickling_and_subclass_a_builtin(error: BaseException) -> None:
    assert isinstance(error, ReflexBuilddError)
    builtins = [c for c in type(error).__mro__ if c.__module__ == "builtins"]
    assert builtins[0] not in (Exception, BaseException), "no builtin to catch it by"
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert str(back) == str(error)
    assert vars(back) == vars(error)
    if isinstance(error, OSError):
        assert (back.errno, back.filename) == (error.errno, error.filename)  # type: ignore[attr-defined]


def test_nothing_leaves_the_cli_raw() -> None:
    timeout = as_error(Timeout("/cache/v1/locks/gc.lock"))
    assert timeout is not None and exit_code_of(timeout) == BUSY
    fault = as_error(PermissionError(13, "Permission denied", "/cache/v1/locks/k.lock"), "/cache")
    assert isinstance(fault, CacheIOError) and fault.errno == 13
    assert "/cache/v1/locks/k.lock: Permission denied" in str(fault)
    assert exit_code_of(fault) == CACHE_FAULT
    outside = as_error(PermissionError(13, "Permission denied", "/proj/page.py"), "/cache")
    assert isinstance(outside, InputReadError) and exit_code_of(outside) == BAD_INPUT
    assert as_error(KeyError("a bug")) is None, "bugs keep their traceback"
    assert exit_code_of(InputReadError(13, "Permission denied", "/p/x.py")) == BAD_INPUT


def test_a_busy_gc_lock_is_our_timeout(tmp_path: Path) -> None:
    from reflex_buildd.gc import GcPolicy, collect
    from reflex_buildd_client.cache.store import Cache
    from reflex_buildd_client.errors import LockTimeoutError

    cache = Cache(tmp_path / "cache")
    cache.ensure()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from filelock import FileLock; "
            "lock = FileLock(sys.argv[1]); lock.acquire(); print('held', flush=True); time.sleep(60)",
            str(cache.gc_lock_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockTimeoutError, match="another gc holds") as caught:
            collect(cache, GcPolicy(max_size=1), lock_timeout=0.1)
        assert isinstance(caught.value, TimeoutError)
        assert exit_code_of(caught.value) == BUSY
    finally:
        holder.kill()
        holder.wait(timeout=10)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)")
def test_a_disk_too_full_for_the_failure_record_leaves_no_building_record(tmp_path: Path) -> None:
    from reflex_buildd.records import BuildRecords
    from reflex_buildd_client.cache.status import BuildState, read_status, write_record
    from reflex_buildd_client.cache.store import Cache
    from reflex_buildd_client.project import Project

    key = "f" * 32
    with _tmpfs(tmp_path / "cache", "64k") as root:
        cache = Cache(root)
        cache.ensure()
        write_record(cache, key, BuildState.BUILDING, log="", project=str(tmp_path))
        assert read_status(cache, key).state is BuildState.BUILDING
        with pytest.raises(OSError) as full, (root / "filler").open("wb") as filler:
            while True:
                filler.write(b"\0" * 4096)
                filler.flush()
        assert full.value.errno == 28
        fault = CacheIOError(28, "No space left on device", str(cache.tmp_dir() / "x"))
        project = Project(root=tmp_path, app_name="app")
        records = BuildRecords(cache, key, project, cache.log_path(key))
        records.fault(fault)
        # No room for a "failed" record: the key reads as absent, not as building.
        assert read_status(cache, key).state is BuildState.ABSENT
        (root / "filler").unlink()
        records.fault(fault)
        status = read_status(cache, key)
        assert status.state is BuildState.FAILED and status.record is not None
        assert "No space left on device" in status.record["tail"]


def test_remote_faults_keep_their_codes() -> None:
    from reflex_buildd.exits import PROBLEMS_FOUND
    from reflex_buildd_client.errors import RemoteUnavailableError, UntrustedArtifactError

    assert exit_code_of(UntrustedArtifactError("refused: not signed")) == PROBLEMS_FOUND
    assert exit_code_of(RemoteUnavailableError("s3 down")) == CACHE_FAULT
