"""The .gitignore subset (pure)."""

from __future__ import annotations

import pytest

from reflex_buildd_client.keys.ignore import is_ignored, parse_ignore

CASES = [
    # (ignore text, path, is_dir, ignored)
    ("*.log", "a.log", False, True),
    ("*.log", "deep/er/a.log", False, True),
    ("*.log", "a.logx", False, False),
    ("build/", "build", True, True),
    ("build/", "build", False, False),
    ("build/", "src/build", True, True),
    ("/build", "src/build", True, False),
    ("/build", "build", False, True),
    ("doc/*.txt", "doc/a.txt", False, True),
    ("doc/*.txt", "doc/x/a.txt", False, False),
    ("doc/**/*.txt", "doc/x/y/a.txt", False, True),
    ("doc/**/*.txt", "doc/a.txt", False, True),
    ("**/cache", "a/b/cache", True, True),
    ("out/**", "out/a/b", False, True),
    ("*.txt\n!keep.txt", "keep.txt", False, False),
    ("*.txt\n!keep.txt", "drop.txt", False, True),
    ("# comment\n\n", "# comment", False, False),
    ("\\#hash", "#hash", False, True),
    ("\\!bang", "!bang", False, True),
    ("a?c", "abc", False, True),
    ("a?c", "a/c", False, False),
    ("[ab].py", "b.py", False, True),
    ("[!ab].py", "b.py", False, False),
    ("trailing   ", "trailing", False, True),
]


@pytest.mark.parametrize(("text", "path", "is_dir", "ignored"), CASES)
def test_patterns(text: str, path: str, is_dir: bool, ignored: bool) -> None:
    assert is_ignored(path, is_dir=is_dir, stack=[parse_ignore(text)]) is ignored


def test_nested_file_applies_below_its_directory_and_wins() -> None:
    stack = [parse_ignore("*.txt"), parse_ignore("!keep.txt\nlocal", base="sub")]
    assert is_ignored("sub/keep.txt", is_dir=False, stack=stack) is False
    assert is_ignored("keep.txt", is_dir=False, stack=stack) is True
    assert is_ignored("sub/local", is_dir=True, stack=stack) is True
    assert is_ignored("local", is_dir=True, stack=stack) is False
