"""The persistent stat cache: warm keys read nothing; racy entries are re-hashed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reflex_buildd_client.inputs.sources import compute_key, stat_cache_path
from reflex_buildd_client.keys import hashing, statcache
from reflex_buildd_client.keys.statcache import stat_identity
from reflex_buildd_client.project import find_project
from reflex_buildd_client.settings import Settings

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REFLEX_BUILDD_JS_RUNTIME", "bun@1.4.4")
    root = tmp_path / "project"
    (root / "app").mkdir(parents=True)
    (root / "rxconfig.py").write_text('import reflex as rx\nconfig = rx.Config(app_name="app")\n')
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "app.py").write_text("import reflex as rx\napp = rx.App()\n")
    (root / "assets").mkdir()
    (root / "assets" / "data.txt").write_text("AAAA")
    return root


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    read: list[str] = []
    real = hashing._hash

    def counting(found):  # type: ignore[no-untyped-def]
        read.append(found.rel)
        return real(found)

    monkeypatch.setattr(hashing, "_hash", counting)
    return read


def test_warm_key_reads_no_file_contents(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A zero window: the files were written before this key started.
    monkeypatch.setattr(statcache, "RACY_WINDOW_NS", 0)
    proj, cache = find_project(project), tmp_path / "cache"
    read = _count_reads(monkeypatch)
    cold, _ = compute_key(proj, settings=Settings.load(), cache_dir=cache)
    assert sorted(read) == ["app/__init__.py", "app/app.py", "assets/data.txt", "rxconfig.py"]
    read.clear()
    warm, _ = compute_key(proj, settings=Settings.load(), cache_dir=cache)
    assert read == [] and warm == cold
    assert stat_cache_path(cache, proj).is_file()
    assert not any("statcache" in p.name for p in project.rglob("*"))


def test_recent_files_are_racy_and_rehashed(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With the real window, files written a moment ago cannot be trusted yet.
    proj, cache = find_project(project), tmp_path / "cache"
    compute_key(proj, settings=Settings.load(), cache_dir=cache)
    read = _count_reads(monkeypatch)
    compute_key(proj, settings=Settings.load(), cache_dir=cache)
    assert "assets/data.txt" in read


def _forge_indistinguishable_entry(cache: Path, proj_root: Path, *, recorded_delta_ns: int) -> None:
    """Make the stat cache hold the *old* digest under the file's *new* stat
    identity: exactly what a filesystem with coarse timestamps produces when a
    file is rewritten (same size) within one timestamp tick of being hashed."""
    proj = find_project(proj_root)
    path = stat_cache_path(cache, proj)
    data = json.loads(path.read_bytes())
    entry = data["entries"]["assets/data.txt"]
    st = (proj_root / "assets" / "data.txt").stat()
    size, mtime_ns, ino, ctime_ns = stat_identity(st)
    entry[:5] = [size, mtime_ns, ino, ctime_ns, max(mtime_ns, ctime_ns) + recorded_delta_ns]
    path.write_text(json.dumps(data))


def test_racy_git_same_size_rewrite_within_timestamp_granularity(
    project: Path, tmp_path: Path
) -> None:
    proj, cache = find_project(project), tmp_path / "cache"
    first, _ = compute_key(proj, settings=Settings.load(), cache_dir=cache)
    data = project / "assets" / "data.txt"
    st = data.stat()
    data.write_text("BBBB")  # same size
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime
    _forge_indistinguishable_entry(cache, project, recorded_delta_ns=1_000_000)
    second, inputs = compute_key(proj, settings=Settings.load(), cache_dir=cache)
    truth, _ = compute_key(
        proj, settings=Settings.load(), cache_dir=tmp_path / "fresh", stat_cache=False
    )
    assert second == truth != first
    assert inputs.files["assets/data.txt"] == hashing.digest_file(data)


def test_the_racy_rule_is_what_catches_it(project: Path, tmp_path: Path) -> None:
    # Control: the same forged entry recorded well after the last change is
    # trusted (no read), which is the stat cache working as designed. So the
    # test above passes because of the racy rule, not by accident.
    proj, cache = find_project(project), tmp_path / "cache"
    first, _ = compute_key(proj, settings=Settings.load(), cache_dir=cache)
    data = project / "assets" / "data.txt"
    st = data.stat()
    data.write_text("BBBB")
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))
    _forge_indistinguishable_entry(
        cache, project, recorded_delta_ns=statcache.RACY_WINDOW_NS + 1_000_000_000
    )
    stale, _ = compute_key(proj, settings=Settings.load(), cache_dir=cache)
    assert stale == first


def test_rewrite_in_same_tick_changes_key(project: Path, tmp_path: Path) -> None:
    # The same scenario without forging: mtime restored, ctime moves.
    proj, cache = find_project(project), tmp_path / "cache"
    first, _ = compute_key(proj, settings=Settings.load(), cache_dir=cache)
    data = project / "assets" / "data.txt"
    st = data.stat()
    data.write_text("CCCC")
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert compute_key(proj, settings=Settings.load(), cache_dir=cache)[0] != first


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"{not json",
        b'{"format": 1, "entries": []}',
        b'{"format": 1, "entries": {"rxconfig.py": [1, 2]}}',
    ],
)
def test_corrupt_stat_cache_is_no_cache(
    garbage: bytes, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj, cache = find_project(project), tmp_path / "cache"
    truth, _ = compute_key(proj, settings=Settings.load(), cache_dir=cache, stat_cache=False)
    path = stat_cache_path(cache, proj)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(garbage)
    assert compute_key(proj, settings=Settings.load(), cache_dir=cache)[0] == truth
    assert json.loads(path.read_bytes())["format"] == 1  # rewritten whole


def test_deleted_files_leave_the_stat_cache(project: Path, tmp_path: Path) -> None:
    proj, cache = find_project(project), tmp_path / "cache"
    compute_key(proj, settings=Settings.load(), cache_dir=cache)
    (project / "assets" / "data.txt").unlink()
    compute_key(proj, settings=Settings.load(), cache_dir=cache)
    entries = json.loads(stat_cache_path(cache, proj).read_bytes())["entries"]
    assert "assets/data.txt" not in entries
