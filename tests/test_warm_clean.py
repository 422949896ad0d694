"""A warm build equals a clean build: real builds in the warm workspace, each
compared file by file with a build of the same inputs in a fresh workspace
(``verify --rebuild``), after adds, deletes, renames, a removed page and a file
name that is not UTF-8. Plus the workspace's trust rules, without a build.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import REPO, Built, run_cli

SECOND_APP = REPO / "tests" / "fixtures" / "second_app" / "project"
PAGE = "second_app/second_app.py"
EXTRA_PAGE = '''

def extra() -> rx.Component:
    """A page that a later step removes."""
    return rx.el.p("extra page", id="extra")


app.add_page(extra, route="/extra")
'''


def _rebuild(project: Path, cache: Path) -> dict[str, object]:
    result = run_cli("verify", "--rebuild", str(project), "--json", cache_dir=cache)
    assert result.returncode in (0, 4), result.stdout + result.stderr
    (report,) = json.loads(result.stdout)
    return dict(report)


def _files(cache: Path, key: str) -> set[str]:
    manifest = json.loads((cache / "v1" / "artifacts" / key / "manifest.json").read_text())
    return set(manifest["files"])


@pytest.mark.slow
def test_warm_builds_equal_fresh_builds_across_edits(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    shutil.copytree(SECOND_APP, project, ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "cache"
    assets = project / "assets"
    assets.mkdir()
    page = project / PAGE
    original_page = page.read_text()

    # 1. Adds: two assets and a page.
    (assets / "s.txt").write_text("SECRET")
    (assets / "keep.txt").write_text("keep")
    page.write_text(original_page + EXTRA_PAGE)
    first = _rebuild(project, cache)
    assert first["ok"], first
    assert {"public/s.txt", "public/keep.txt"} <= _files(cache, str(first["key"]))

    # 2. A delete, a rename and a removed page: the warm workspace still holds
    #    all three from step 1, a fresh one none of them.
    (assets / "s.txt").unlink()
    (assets / "keep.txt").rename(assets / "renamed.txt")
    page.write_text(original_page)
    second = _rebuild(project, cache)
    assert second["ok"], second
    files = _files(cache, str(second["key"]))
    assert "public/s.txt" not in files and "public/keep.txt" not in files
    assert "public/renamed.txt" in files
    assert not any("extra" in rel for rel in files), sorted(files)

    # 3. A file name that is not UTF-8: vite cannot copy it, so the build
    #    fails, warm or not.
    bad = os.fsencode(assets) + b"/bad-\xff.txt"
    with open(bad, "wb") as out:
        out.write(b"bad")
    failed = run_cli("build", str(project), cache_dir=cache)
    assert failed.returncode == 1, failed.stdout + failed.stderr

    # 4. Once it is gone, the warm workspace builds again, and equals a fresh one.
    os.unlink(bad)
    (assets / "new.txt").write_text("new")
    fourth = _rebuild(project, cache)
    assert fourth["ok"], fourth
    assert "public/new.txt" in _files(cache, str(fourth["key"]))

    # The verdict can fail: a stale file planted in an artifact is reported.
    key = str(fourth["key"])
    artifact = cache / "v1" / "artifacts" / key
    manifest = json.loads((artifact / "manifest.json").read_text())
    manifest["files"]["public/stale.txt"] = manifest["files"]["public/new.txt"]
    (artifact / "public" / "stale.txt").write_text("new")
    os.chmod(artifact / "manifest.json", 0o644)
    (artifact / "manifest.json").write_text(json.dumps(manifest))
    differs = run_cli("verify", "--rebuild", key[:12], cache_dir=cache)
    assert differs.returncode == 4, differs.stdout + differs.stderr
    assert "only in the artifact: public/stale.txt" in differs.stderr


@pytest.mark.slow
def test_the_showcase_rebuilds_to_the_same_files(showcase_build: Built, cache_dir: Path) -> None:
    # The richer app (assets, shared assets, a sitemap, dynamic routes): what a
    # fresh workspace makes of its key is byte for byte the session's artifact.
    result = run_cli("verify", "--rebuild", showcase_build.key[:10], "--json", cache_dir=cache_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    (report,) = json.loads(result.stdout)
    assert report["ok"] and report["key"] == showcase_build.key, report
    assert report["files"] > 50
