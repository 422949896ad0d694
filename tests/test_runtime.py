"""JS runtime resolution: hosts key without one, builders find exactly the keyed one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from reflex_buildd_client.errors import JSRuntimeNotFoundError
from reflex_buildd_client.inputs import runtime
from reflex_buildd_client.settings import Settings


@pytest.fixture
def no_runtime(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A machine without any JS runtime: empty PATH, no Reflex bun, no venv bun."""
    for name in ("REFLEX_BUILDD_BUN", "REFLEX_BUILDD_JS_RUNTIME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("REFLEX_DIR", str(tmp_path / "reflex"))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "venv" / "bin" / "python"))
    monkeypatch.setattr(runtime, "_node_candidates", lambda _environ: [])


def test_missing_runtime_is_a_clear_error(no_runtime: None) -> None:
    with pytest.raises(JSRuntimeNotFoundError, match="npm install bun") as info:
        runtime.resolve_runtime(settings=Settings.load())
    assert isinstance(info.value, FileNotFoundError)


def test_pinned_identity_needs_no_runtime(
    no_runtime: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFLEX_BUILDD_JS_RUNTIME", "bun@1.4.4")
    assert runtime.runtime_identity(Settings.load()) == "bun@1.4.4"


def _fake_bun(path: Path, version: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(0o755)
    return path


def test_hosts_key_without_any_runtime(no_runtime: None) -> None:
    # No pin, nothing installed: the key names the runtime builds use.
    assert runtime.runtime_identity(Settings.load()) == runtime.DEFAULT_JS_RUNTIME == "bun@1.4.4"


def test_builder_with_another_bun_is_told_the_exact_version(
    no_runtime: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REFLEX_BUILDD_BUN", str(_fake_bun(tmp_path / "b" / "bun", "1.4.5")))
    with pytest.raises(JSRuntimeNotFoundError) as info:
        runtime.resolve_runtime("bun@1.4.4", settings=Settings.load())
    message = str(info.value)
    for expected in ("bun@1.4.4", "npm install bun@1.4.4", "bun@1.4.5", "REFLEX_BUILDD_JS_RUNTIME"):
        assert expected in message, message


def test_builder_picks_the_keyed_runtime_among_several(
    no_runtime: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REFLEX_BUILDD_BUN", str(_fake_bun(tmp_path / "b" / "bun", "1.4.5")))
    wanted = _fake_bun(tmp_path / "path" / "bun", "1.4.4")
    monkeypatch.setenv("PATH", str(wanted.parent))
    found = runtime.resolve_runtime("bun@1.4.4", settings=Settings.load())
    assert found.executable == wanted and found.identity == "bun@1.4.4"


def test_auto_keys_with_the_installed_runtime(
    no_runtime: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REFLEX_BUILDD_BUN", str(_fake_bun(tmp_path / "b" / "bun", "1.4.5")))
    monkeypatch.setenv("REFLEX_BUILDD_JS_RUNTIME", "auto")
    assert runtime.runtime_identity(Settings.load()) == "bun@1.4.5"


def test_explicit_bun_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REFLEX_BUILDD_BUN", str(tmp_path / "nope"))
    with pytest.raises(JSRuntimeNotFoundError, match="REFLEX_BUILDD_BUN"):
        runtime.resolve_runtime(settings=Settings.load())


def test_this_machine_resolves_bun() -> None:
    # scripts/setup.sh links bun into the venv; builds and keys rely on it.
    found = runtime.resolve_runtime(settings=Settings.load())
    assert found.name == "bun" and found.version.startswith("1.")
    assert found.env["REFLEX_USE_NPM"] == "0"


def test_a_builder_without_the_keyed_runtime_is_told_what_to_install(tmp_path: Path) -> None:
    # The whole CLI: the error comes before any build starts or is recorded.
    from conftest import SHOWCASE, run_cli

    result = run_cli(
        "build", str(SHOWCASE), cache_dir=tmp_path / "cache", REFLEX_BUILDD_JS_RUNTIME="bun@9.9.9"
    )
    assert result.returncode == 2, result.stdout + result.stderr
    err = " ".join(result.stderr.split())
    assert "builds of this key use bun@9.9.9 (REFLEX_BUILDD_JS_RUNTIME)" in err, err
    assert "npm install bun@9.9.9" in err and "bun@1.4.4" in err, err
    assert not list((tmp_path / "cache").rglob("*.log"))
