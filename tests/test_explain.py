"""``reflex-buildd explain``: the pure diff, its text, and the command."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from reflex_buildd.cli import main
from reflex_buildd.explain import render
from reflex_buildd_client.cache.manifest import MANIFEST_FORMAT
from reflex_buildd_client.cache.store import Cache
from reflex_buildd_client.inputs.sources import compute_key
from reflex_buildd_client.keys.diff import diff_inputs
from reflex_buildd_client.keys.schema import KEY_SCHEMA, KeyInputs, digest_env_value
from reflex_buildd_client.project import find_project
from reflex_buildd_client.settings import Settings

pytestmark = pytest.mark.timeout(60)

D = {c: c * 64 for c in "abcdef"}


def test_diff_of_every_kind() -> None:
    old = KeyInputs(
        files={"app/app.py": D["a"], "old.txt": D["b"], "assets/x.css": D["c"]},
        versions={"reflex": "0.10.1", "gone": "1"},
        js_runtime="bun@1.4.4",
        env={"VITE_A": D["d"], "MY_FLAG": None, "REFLEX_X": D["e"]},
        settings={"sentinel": "/s"},
        schema=1,
    )
    new = KeyInputs(
        files={"app/app.py": D["f"], "assets/y.css": D["c"], "app/new.py": D["e"]},
        versions={"reflex": "0.10.2", "fresh": "2"},
        js_runtime="bun@1.4.5",
        env={"VITE_A": D["a"], "MY_FLAG": D["b"], "VITE_NEW": D["c"]},
        settings={"sentinel": "/t"},
    )
    diff = diff_inputs(old, new)
    assert diff.added == ["app/new.py"] and diff.removed == ["old.txt"]
    assert diff.changed == ["app/app.py"]
    assert diff.renamed == [("assets/x.css", "assets/y.css")]
    text = render(diff, old_label="OLD", new_label="NEW")
    for expected in [
        f"key schema: 1 -> {KEY_SCHEMA}",
        "files: 1 added, 1 removed, 1 changed, 1 renamed",
        "  + app/new.py",
        "  - old.txt",
        "  ~ app/app.py",
        "  > assets/x.css -> assets/y.css",
        "  ~ reflex 0.10.1 -> 0.10.2",
        "  + fresh 2",
        "  - gone 1",
        "  ~ VITE_A: value changed",
        "  ~ MY_FLAG: unset -> set",
        "  ~ REFLEX_X: set -> not an input",
        "  ~ VITE_NEW: not an input -> set",
        "js runtime: bun@1.4.4 -> bun@1.4.5",
        "  ~ sentinel: /s -> /t",
    ]:
        assert expected in text, expected


def test_same_inputs_say_so() -> None:
    inputs = KeyInputs(files={"a": D["a"]})
    diff = diff_inputs(inputs, inputs)
    assert diff.empty
    assert "no differences" in render(diff, old_label="x", new_label="y")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith(("REFLEX_", "VITE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("REFLEX_BUILDD_JS_RUNTIME", "bun@1.4.4")
    root = tmp_path / "proj"
    (root / "app").mkdir(parents=True)
    (root / "rxconfig.py").write_text('import reflex as rx\nconfig = rx.Config(app_name="app")\n')
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "app.py").write_text("import reflex as rx\napp = rx.App()\n")
    (root / "assets").mkdir()
    (root / "assets" / "old.css").write_text("a{}")
    return root


def _publish_manifest(cache_dir: Path, root: Path, created: float) -> str:
    """Record the project's current inputs as an artifact (no build needed)."""
    project = find_project(root)
    key, inputs = compute_key(project, settings=Settings.load(), cache_dir=cache_dir)
    artifact = Cache(cache_dir).artifact_dir(key)
    artifact.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format": MANIFEST_FORMAT,
        "key": key,
        "created": created,
        "project": {"root": str(project.root), "app_name": project.app_name},
        "inputs": inputs.to_json(),
        "build": {},
        "routes": [],
        "files": {},
    }
    (artifact / "manifest.json").write_text(json.dumps(manifest))
    return key


def _explain(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["explain", *args])
    return result.exit_code, result.output


def test_explain_against_latest_artifact(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    _publish_manifest(cache, project, created=time.time() - 7200)
    (project / "app" / "app.py").write_text("import reflex as rx\napp = rx.App()  # v2\n")
    latest = _publish_manifest(cache, project, created=time.time() - 60)
    (project / "app" / "pages.py").write_text("x = 1\n")
    (project / "assets" / "old.css").unlink()
    monkeypatch.setenv("VITE_API_URL", "https://secret.example")
    monkeypatch.setenv("REFLEX_BUILDD_JS_RUNTIME", "bun@1.5.0")

    code, out = _explain(str(project), "--cache-dir", str(cache))
    assert code == 0, out
    assert f"comparing {latest}" in out and "(built 1 min ago)" in out
    assert "files: 1 added, 1 removed, 0 changed" in out
    assert "  + app/pages.py" in out and "  - assets/old.css" in out
    assert "  ~ app/app.py" not in out  # that changed before the latest artifact
    assert "  ~ VITE_API_URL: not an input -> set" in out
    assert "js runtime: bun@1.4.4 -> bun@1.5.0" in out
    assert "secret.example" not in out
    # Nothing about the value is stored in clear in the manifest either.
    assert digest_env_value("VITE_API_URL", "https://secret.example") not in out


def test_explain_against_key_prefix(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _publish_manifest(cache, project, created=time.time() - 100)
    (project / "app" / "app.py").write_text("import reflex as rx\napp = rx.App()  # v2\n")
    _publish_manifest(cache, project, created=time.time())
    code, out = _explain(str(project), "--cache-dir", str(cache), "--against", first[:8])
    assert code == 0, out
    assert f"comparing {first}" in out and "  ~ app/app.py" in out


def test_explain_when_current_key_is_cached(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _publish_manifest(cache, project, created=time.time())
    code, out = _explain(str(project), "--cache-dir", str(cache))
    assert code == 0
    assert "no differences" in out and "nothing to rebuild" in out


def test_explain_with_nothing_to_compare(project: Path, tmp_path: Path) -> None:
    code, out = _explain(str(project), "--cache-dir", str(tmp_path / "empty"))
    assert code == 2 and "no artifact" in out
    code, out = _explain(str(project), "--cache-dir", str(tmp_path / "empty"), "--against", "ffff")
    assert code == 2 and "no artifact" in out


def test_explain_ignores_other_projects(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    other = tmp_path / "other"
    other.mkdir()
    (other / "rxconfig.py").write_text('import reflex as rx\nconfig = rx.Config(app_name="o")\n')
    _publish_manifest(cache, other, created=time.time())
    code, out = _explain(str(project), "--cache-dir", str(cache))
    assert code == 2 and "no artifact of" in out
