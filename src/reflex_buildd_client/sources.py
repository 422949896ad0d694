"""Collect a project's build inputs from disk (the I/O half of keying).

First version of the input rule: every file under the project is an input
unless it is excluded below (generated output, caches, VCS data, virtual
environments, uploads, databases, editor droppings). Over-including costs a
spurious rebuild; under-including serves a stale frontend, so when in doubt a
file counts.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import blake3

from .keys import KeyInputs, key_of
from .project import Project
from .rewrite import SENTINEL
from .runtime import runtime_identity

__all__ = [
    "EXCLUDED_DIRS",
    "EXCLUDED_FILES",
    "collect_inputs",
    "compute_key",
    "iter_input_files",
]

EXCLUDED_DIRS = frozenset(
    {
        ".web", "node_modules", "__pycache__", ".git", ".hg", ".svn", ".venv", "venv",
        ".states", "uploaded_files", ".mypy_cache", ".pytest_cache", ".ruff_cache",
        ".tox", ".nox", ".idea", ".vscode", ".hypothesis",
    }
)  # fmt: skip

EXCLUDED_FILES = (
    "*.pyc", "*.pyo", "*.db", "*.sqlite", "*.sqlite3", "*.db-journal", "*-wal", "*-shm",
    "*.swp", "*.swo", "*.swx", "*~", ".#*", "#*#", ".DS_Store", "*.tmp", "4913",
)  # fmt: skip

# REFLEX_* variables that only matter at run time or that the build sets itself;
# they would otherwise make hosts and daemons disagree for no reason.
_RUNTIME_ONLY_ENV = frozenset(
    {
        "REFLEX_WEB_WORKDIR", "REFLEX_STATES_WORKDIR", "REFLEX_UPLOADED_FILES_DIR",
        "REFLEX_DIR", "REFLEX_USE_SYSTEM_BUN", "REFLEX_USE_NPM", "REFLEX_FRONTEND_PATH",
        "REFLEX_DB_URL", "REFLEX_ASYNC_DB_URL", "REFLEX_REDIS_URL", "REFLEX_LOGLEVEL",
        "REFLEX_SKIP_COMPILE", "REFLEX_APP_NAME",
    }
)  # fmt: skip

_ENV_PREFIXES = ("REFLEX_", "VITE_")

# The files whose content defines how we build; their digest is a key input so
# that a change to the frontend patch invalidates every artifact.
_RECIPE_FILES = ("plugin.py", "build.py")

# (path, size, mtime_ns, inode) -> digest; a warm re-key stats instead of reads.
_digest_memo: dict[tuple[str, int, int, int], str] = {}


def _is_excluded_file(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in EXCLUDED_FILES)


def iter_input_files(root: Path) -> Iterator[Path]:
    """Yield every input file under ``root``, in no particular order."""
    stack = [root]
    while stack:
        directory = stack.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name in EXCLUDED_DIRS or os.path.exists(
                        os.path.join(entry.path, "pyvenv.cfg")
                    ):
                        continue
                    stack.append(Path(entry.path))
                elif entry.is_file() and not _is_excluded_file(entry.name):
                    yield Path(entry.path)


def digest_file(path: Path) -> str:
    """blake3 of a file's content, memoized on its stat identity."""
    st = path.stat()
    memo_key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
    if (cached := _digest_memo.get(memo_key)) is not None:
        return cached
    hasher = blake3.blake3()
    hasher.update_mmap(path) if st.st_size > (1 << 20) else hasher.update(path.read_bytes())
    digest = hasher.hexdigest()
    _digest_memo[memo_key] = digest
    return digest


def _reflex_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name.startswith("reflex") and name not in ("reflex-buildd", "reflex-hosting-cli"):
            versions[name] = dist.version
    return versions


def _build_env(environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    selected: dict[str, str] = {}
    for name, value in environ.items():
        if not name.startswith(_ENV_PREFIXES) or name in _RUNTIME_ONLY_ENV:
            continue
        if name.startswith("REFLEX_BUILDD_"):
            continue
        selected[name] = blake3.blake3(value.encode("utf-8")).hexdigest()
    return selected


def _recipe_digest() -> str:
    hasher = blake3.blake3()
    builder = Path(__file__).resolve().parent.parent / "reflex_buildd"
    for name in _RECIPE_FILES:
        hasher.update(name.encode() + b"\0" + (builder / name).read_bytes() + b"\0")
    return hasher.hexdigest()


def collect_inputs(project: Project) -> KeyInputs:
    """Read everything the key of ``project`` depends on."""
    files = {
        path.relative_to(project.root).as_posix(): digest_file(path)
        for path in iter_input_files(project.root)
    }
    return KeyInputs(
        files=files,
        versions=_reflex_versions(),
        js_runtime=runtime_identity(),
        env=_build_env(os.environ),
        settings={"sentinel": SENTINEL, "recipe": _recipe_digest()},
    )


def compute_key(project: Project) -> tuple[str, KeyInputs]:
    """The key of ``project``'s current sources, and the inputs behind it."""
    inputs = collect_inputs(project)
    return key_of(inputs), inputs
