"""Everything in src/ is typed, and mypy agrees (the packages ship py.typed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_mypy_is_clean(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "src",
            "--ignore-missing-imports",
            "--disallow-untyped-defs",
            "--cache-dir",
            str(tmp_path / "mypy"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_both_packages_are_marked_typed() -> None:
    for package in ("reflex_buildd", "reflex_buildd_client"):
        assert (REPO / "src" / package / "py.typed").is_file()
