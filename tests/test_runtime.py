"""JS runtime resolution: the pin for runtime-less hosts, and a clear error."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from reflex_buildd_client import runtime
from reflex_buildd_client.errors import JSRuntimeNotFoundError


@pytest.fixture
def no_runtime(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A machine without any JS runtime: empty PATH, no Reflex bun, no venv bun."""
    for name in ("REFLEX_BUILDD_BUN", "REFLEX_BUILDD_JS_RUNTIME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("REFLEX_DIR", str(tmp_path / "reflex"))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "venv" / "bin" / "python"))
    monkeypatch.setattr(runtime, "_node_candidates", lambda: [])


def test_missing_runtime_is_a_clear_error(no_runtime: None) -> None:
    with pytest.raises(JSRuntimeNotFoundError, match="npm install bun") as info:
        runtime.resolve_runtime()
    assert isinstance(info.value, FileNotFoundError)


def test_pinned_identity_needs_no_runtime(
    no_runtime: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFLEX_BUILDD_JS_RUNTIME", "bun@1.4.4")
    assert runtime.runtime_identity() == "bun@1.4.4"


def test_explicit_bun_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REFLEX_BUILDD_BUN", str(tmp_path / "nope"))
    with pytest.raises(JSRuntimeNotFoundError, match="REFLEX_BUILDD_BUN"):
        runtime.resolve_runtime()


def test_this_machine_resolves_bun() -> None:
    # scripts/setup.sh links bun into the venv; builds and keys rely on it.
    found = runtime.resolve_runtime()
    assert found.name == "bun" and found.version.startswith("1.")
    assert found.env["REFLEX_USE_NPM"] == "0"
