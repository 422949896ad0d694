"""The build CLI against real Reflex builds: untouched sources, failures, hits."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import SHOWCASE, Built, run_cli

pytestmark = pytest.mark.slow


def _snapshot(root: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every entry under root with its bytes, mode and mtime (dirs included)."""
    out: dict[str, tuple[bytes, int, int]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        data = path.read_bytes() if path.is_file() else b""
        out[path.relative_to(root).as_posix()] = (data, st.st_mode, st.st_mtime_ns)
    return out


def _copy_project(tmp_path: Path) -> Path:
    project = tmp_path / "proj"
    shutil.copytree(SHOWCASE, project, ignore=shutil.ignore_patterns("__pycache__"))
    return project


def test_build_leaves_the_project_untouched(tmp_path: Path) -> None:
    # A cache of its own, so this really builds instead of hitting the session's.
    before = _snapshot(SHOWCASE)
    result = run_cli("build", str(SHOWCASE), "--json", cache_dir=tmp_path / "cache")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["built"] is True
    after = _snapshot(SHOWCASE)
    assert sorted(after) == sorted(before)
    assert after == before
    assert not (SHOWCASE / ".web").exists()
    assert not (SHOWCASE / "reflex.lock").exists()


def test_second_build_is_a_hit_and_key_matches(showcase_build: Built, cache_dir: Path) -> None:
    result = run_cli("build", str(SHOWCASE), "--json", cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.splitlines()[-1])
    assert data == {**data, "key": showcase_build.key, "built": False}
    assert Path(data["path"]) == showcase_build.path
    plain = run_cli("build", str(SHOWCASE), cache_dir=cache_dir)
    assert plain.stdout.strip().splitlines()[-1] == showcase_build.key
    key = run_cli("key", str(SHOWCASE), cache_dir=cache_dir)
    assert key.returncode == 0, key.stderr
    assert key.stdout.strip() == showcase_build.key


def test_key_does_not_build(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    result = run_cli("key", str(SHOWCASE), cache_dir=cache)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip()) == 32
    assert not (cache / "v1" / "artifacts").exists() or not any(
        (cache / "v1" / "artifacts").iterdir()
    )


def test_manifest_describes_the_artifact(showcase_build: Built) -> None:
    manifest = json.loads((showcase_build.path / "manifest.json").read_text())
    assert manifest["key"] == showcase_build.key
    files = manifest["files"]
    assert "public/index.html" in files and "web/backend/upload_is_used" in files
    assert files["public/index.html"]["sentinels"] > 0
    assert not any("__RXBUILDD_PREFIX__" in name for name in files), "junk duplicate kept"
    for rel, entry in files.items():
        assert (showcase_build.path / rel).stat().st_size == entry["size"]
    assert "post/[pid]" in manifest["routes"]
    assert manifest["build"]["js_runtime"].startswith(("bun@", "node@"))
    assert "showcase/showcase.py" in manifest["inputs"]["files"]


def test_broken_app_fails_loudly_and_publishes_nothing(tmp_path: Path) -> None:
    project = _copy_project(tmp_path)
    page = project / "showcase" / "showcase.py"
    page.write_text(
        page.read_text()
        + "\n\ndef broken() -> rx.Component:\n"
        + "    raise RuntimeError('boom from the broken page')\n\n\n"
        + "app.add_page(broken, route='/broken')\n"
    )
    cache = tmp_path / "cache"
    result = run_cli("build", str(project), cache_dir=cache)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "boom from the broken page" in result.stderr
    assert "failed" in result.stderr
    # The error points at the user's file and line, not into the deleted
    # build snapshot, and reads whole: from its traceback header, no ANSI codes.
    line = (
        page.read_text().splitlines().index("    raise RuntimeError('boom from the broken page')")
    )
    where = f'File "{page}", line {line + 1}, in broken'
    assert where in result.stderr, result.stderr
    assert f"at showcase/showcase.py, line {line + 1}, in broken: RuntimeError" in result.stderr
    assert "Traceback (most recent call last):" in result.stderr
    assert "/v1/tmp/build-" not in result.stderr and "\x1b[" not in result.stderr
    (log,) = (cache / "v1" / "logs").iterdir()
    text = log.read_text()
    assert where in text and "/v1/tmp/build-" not in text and "\x1b" not in text
    artifacts = cache / "v1" / "artifacts"
    assert not artifacts.exists() or not any(artifacts.iterdir())
    assert not any((cache / "v1" / "tmp").iterdir()), "scratch left behind"
    assert result.stdout.strip() == ""


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "is not a directory"),
        (lambda p: p, "has no rxconfig.py"),
    ],
    ids=["missing-dir", "not-a-project"],
)
def test_bad_project_paths_exit_2(tmp_path: Path, make: object, message: str) -> None:
    target = make(tmp_path)  # type: ignore[operator]
    for command in ("build", "key"):
        result = run_cli(command, str(target), cache_dir=tmp_path / "cache")
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert message in result.stderr
        assert "Traceback" not in result.stderr


def test_build_runs_from_any_cwd_with_env_cache_dir(
    tmp_path: Path, showcase_build: Built, cache_dir: Path
) -> None:
    import subprocess
    import sys

    from conftest import tool_env

    result = subprocess.run(
        [sys.executable, "-m", "reflex_buildd", "key", os.path.relpath(SHOWCASE, tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=tool_env(REFLEX_BUILDD_CACHE_DIR=str(cache_dir)),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == showcase_build.key
