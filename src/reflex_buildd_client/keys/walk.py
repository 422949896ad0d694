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


# A directory to walk: (its path, its relative path, the ignore stack, gitignore applies).
_Pending = tuple[str, str, tuple[IgnoreRules, ...], bool]


def walk_project(
    root: Path,
    *,
    always_files: frozenset[str],
    always_dirs: frozenset[str],
    skip_dirs: frozenset[str],
) -> Iterator[Found]:
    """Yield the input files under ``root`` (see the module doc for the rule)."""
    stack: list[_Pending] = [(str(root), "", (), True)]
    seen_dirs: set[tuple[int, int]] = set()
    while stack:
        directory, rel_dir, ignores, ignoring = stack.pop()
        if not _first_visit(directory, seen_dirs):
            continue
        if ignoring:
            ignores = _with_gitignore(directory, rel_dir, ignores)
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
                pending = (entry.path, rel, ignores, ignoring)
                if (sub := _descend(entry, pending, always_dirs, skip_dirs)) is not None:
                    stack.append(sub)
            elif found := _input_file(entry, rel, ignores if ignoring else (), always_files):
                yield found


def _first_visit(directory: str, seen: set[tuple[int, int]]) -> bool:
    """Whether ``directory`` exists and was not walked yet (a symlink loop comes back)."""
    try:
        st = os.stat(directory)
    except OSError:
        return False
    if (st.st_dev, st.st_ino) in seen:
        return False
    seen.add((st.st_dev, st.st_ino))
    return True


def _with_gitignore(
    directory: str, rel_dir: str, ignores: tuple[IgnoreRules, ...]
) -> tuple[IgnoreRules, ...]:
    """``ignores`` plus the rules of ``directory``'s ``.gitignore``, if it has one."""
    try:
        with open(os.path.join(directory, ".gitignore"), encoding="utf-8", errors="replace") as f:
            return (*ignores, parse_ignore(f.read(), rel_dir))
    except OSError:
        return ignores


def _descend(
    entry: os.DirEntry[str],
    pending: _Pending,
    always_dirs: frozenset[str],
    skip_dirs: frozenset[str],
) -> _Pending | None:
    """The subdirectory to walk next, or None when it holds no inputs."""
    _path, rel, ignores, ignoring = pending
    if rel in skip_dirs or rel in GENERATED_DIRS or _is_excluded_dir(entry.path, entry.name):
        return None
    forced = (
        not ignoring
        or rel in always_dirs
        or os.path.exists(os.path.join(entry.path, "__init__.py"))
    )
    if not forced and is_ignored(rel, is_dir=True, stack=ignores):
        return None
    return (entry.path, rel, ignores, ignoring and not forced)


def _input_file(
    entry: os.DirEntry[str],
    rel: str,
    ignores: tuple[IgnoreRules, ...],
    always_files: frozenset[str],
) -> Found | None:
    """The file as an input, or None (excluded, ignored, not a regular file, gone).

    ``ignores`` is empty where gitignore does not apply (or no ignore file is above).
    """
    if _is_excluded_file(entry.name):
        return None
    if (
        ignores
        and rel not in always_files
        and not entry.name.endswith(".py")
        and is_ignored(rel, is_dir=False, stack=ignores)
    ):
        return None
    try:
        st = entry.stat()
    except OSError:
        return None  # a dangling symlink or a file deleted under us
    if not stat.S_ISREG(st.st_mode):
        return None  # sockets, FIFOs, devices
    return Found(rel, entry.path, st)


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
