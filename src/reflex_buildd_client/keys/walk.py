"""Walk a project: which files are build inputs (exclusions, ignore files, declared globs).

Every file under the project is an input unless it is excluded, because a
file that a build reads and the key misses serves a stale frontend, while a
file the key has and the build ignores only costs a spurious rebuild.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

from ..project import Project, config_literal
from .ignore import IgnoreRules, is_ignored, parse_ignore
from .tempfiles import is_editor_temp

__all__ = [
    "ALWAYS_DIRS",
    "EXCLUDED_DIRS",
    "EXCLUDED_FILES",
    "GENERATED_DIRS",
    "Found",
    "declared_files",
    "env_files",
    "iter_input_files",
    "walk_project",
]

EXCLUDED_DIRS = frozenset(
    {
        ".web",
        "node_modules",
        "__pycache__",
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        ".states",
        "uploaded_files",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
        ".idea",
        ".vscode",
        ".hypothesis",
        ".direnv",
    }
)

# Project-relative directories that Reflex writes itself: importing an app
# that uses rx.asset(..., shared=True) links the shared files under
# assets/external/. The files linked to are inputs already (they sit beside the
# app's modules), and a build recreates the links in its own snapshot; keying
# the links would change the key (and start a daemon build) whenever a host
# or an editor's Reflex imported the app.
GENERATED_DIRS = frozenset({"assets/external"})

EXCLUDED_FILES = (
    "*.pyc",
    "*.pyo",
    "*.db",
    "*.sqlite",
    "*.sqlite3",
    "*.db-journal",
    "*-wal",
    "*-shm",
    "*.swp",
    "*.swo",
    "*.swx",
    "*~",
    ".#*",
    "#*#",
    ".DS_Store",
    "*.tmp",
    "4913",
)

# A directory holding one of these is a virtual environment, whatever its name.
_VENV_MARKERS = ("pyvenv.cfg", "conda-meta")

# Directories whose whole content a build reads, .gitignore or not.
ALWAYS_DIRS = ("assets", "reflex.lock")


class Found(NamedTuple):
    """One file the walk found (before hashing).

    A named tuple: a warm key makes one per input file, and this is the
    cheapest record Python has.
    """

    rel: str
    path: str
    stat: os.stat_result


# One alternation instead of a loop of fnmatch calls: this runs once per file
# of every key, warm ones included.
_EXCLUDED_FILE_RE = re.compile("|".join(fnmatch.translate(p) for p in EXCLUDED_FILES))


def _is_excluded_file(name: str) -> bool:
    return _EXCLUDED_FILE_RE.match(name) is not None or is_editor_temp(name)


def _is_excluded_dir(path: str, name: str) -> bool:
    return name in EXCLUDED_DIRS or any(
        os.path.exists(os.path.join(path, marker)) for marker in _VENV_MARKERS
    )


def env_files(project: Project, environ: Mapping[str, str]) -> list[str]:
    # Reflex joins several env files with os.pathsep (config.env_file and
    # REFLEX_ENV_FILE); only those inside the project can be inputs by path.
    value = environ.get("REFLEX_ENV_FILE") or config_literal(project.root, "env_file") or ""
    found: list[str] = []
    for part in value.split(os.pathsep):
        if not part.strip():
            continue
        path = (project.root / part.strip()).resolve()
        if path.is_relative_to(project.root):
            found.append(path.relative_to(project.root).as_posix())
    return found


def walk_project(
    root: Path,
    *,
    always_files: frozenset[str],
    always_dirs: frozenset[str],
    skip_dirs: frozenset[str],
) -> Iterator[Found]:
    """Yield the input files under ``root`` (see the module doc for the rule)."""
    # Entries: (directory, its relative path, ignore stack, gitignore applies).
    stack: list[tuple[str, str, tuple[IgnoreRules, ...], bool]] = [(str(root), "", (), True)]
    seen_dirs: set[tuple[int, int]] = set()
    while stack:
        directory, rel_dir, ignores, ignoring = stack.pop()
        try:
            st = os.stat(directory)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen_dirs:  # a symlink loop
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        if ignoring:
            ignore_file = os.path.join(directory, ".gitignore")
            try:
                with open(ignore_file, encoding="utf-8", errors="replace") as f:
                    ignores = (*ignores, parse_ignore(f.read(), rel_dir))
            except OSError:
                pass
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                is_dir = entry.is_dir()  # follows symlinks: a linked dir is read
            except OSError:
                continue
            if is_dir:
                if (
                    rel in skip_dirs
                    or rel in GENERATED_DIRS
                    or _is_excluded_dir(entry.path, entry.name)
                ):
                    continue
                forced = (
                    not ignoring
                    or rel in always_dirs
                    or os.path.exists(os.path.join(entry.path, "__init__.py"))
                )
                if not forced and is_ignored(rel, is_dir=True, stack=ignores):
                    continue
                stack.append((entry.path, rel, ignores, ignoring and not forced))
                continue
            if _is_excluded_file(entry.name):
                continue
            if (
                ignores  # no ignore file above: nothing to check
                and ignoring
                and rel not in always_files
                and not entry.name.endswith(".py")
                and is_ignored(rel, is_dir=False, stack=ignores)
            ):
                continue
            try:
                st = entry.stat()
            except OSError:
                continue  # a dangling symlink or a file deleted under us
            if not stat.S_ISREG(st.st_mode):
                continue  # sockets, FIFOs, devices
            yield Found(rel, entry.path, st)


def declared_files(root: Path, globs: Iterable[str], skip_dirs: frozenset[str]) -> Iterator[Found]:
    for pattern in globs:
        for path in root.glob(pattern):
            rel = path.relative_to(root).as_posix()
            parts = rel.split("/")
            if any(p in EXCLUDED_DIRS for p in parts[:-1]):
                continue
            if any("/".join(parts[:i]) in skip_dirs for i in range(1, len(parts))):
                continue
            try:
                st = path.stat()
            except OSError:
                continue
            if path.is_file():
                yield Found(rel, str(path), st)


def iter_input_files(root: Path) -> Iterator[Path]:
    """Yield every input file under ``root``, in no particular order.

    Only the walk: declared inputs, the env file and the cache directory are
    taken into account by :func:`collect_inputs`.
    """
    for found in walk_project(
        root,
        always_files=frozenset({"rxconfig.py"}),
        always_dirs=frozenset(ALWAYS_DIRS),
        skip_dirs=frozenset(),
    ):
        yield Path(found.path)
