"""Whether an in-process app's relative paths can go wrong in the host, and saying so once.

A mounted app loaded into the host process keeps Reflex's relative defaults
(``uploaded_files/``, a relative sqlite ``db_url``, ``open("data/x")``), so
they resolve against the host's working directory, where ``reflex run``
would resolve them against the project (:mod:`.inprocess`). That is worth a
warning only when the app can use such a path, and only once per host:

- **when**: :func:`relative_path_uses` names what the app can reach by a
  relative path: a relative sqlite ``db_url``, uploads (Reflex's
  ``upload_is_used`` marker in the artifact) into a relative directory, or
  files beside its code that it may open (anything in the project that is
  not code, assets or project metadata). An app with none of these gets no
  warning, whatever the working directory;
- **once**: the workers of a multi-process server (``uvicorn --workers``,
  granian) load the same app from the same directory; only the first one
  says it, the others log it at DEBUG.
"""

from __future__ import annotations

import logging
import multiprocessing
import re
from collections.abc import Iterable
from pathlib import Path

__all__ = ["first_worker", "relative_path_uses", "warn_relative_paths"]

logger = logging.getLogger("reflex_buildd")

# Entries of a project that are code, assets or project metadata: an app does
# not open these by a relative path at run time.
_NOT_DATA = frozenset(
    {
        "rxconfig.py",
        "assets",
        "reflex.lock",
        "pyproject.toml",
        "setup.py",
        "setup.cfg",
        "uv.lock",
        "poetry.lock",
        "Pipfile",
        "Pipfile.lock",
        "Makefile",
        "Procfile",
        "alembic",
        "alembic.ini",
        "tests",
        "docs",
        "node_modules",
        "__pycache__",
        # Written at run time by Reflex itself (its defaults, listed separately).
        "uploaded_files",
    }
)
_METADATA = re.compile(
    r"^(requirements.*\.txt|readme.*|license.*|licence.*|changelog.*|dockerfile.*|"
    r"docker-compose.*|compose\..*|.*\.(py|md|rst|toml|cfg|ini|lock))$",
    re.IGNORECASE,
)
_RELATIVE_SQLITE = re.compile(r"^sqlite(\+\w+)?:///(?!/)(?!:memory:)(.+)$")


def _data_beside_code(root: Path, skip: Iterable[str]) -> list[str]:
    """Top-level entries of the project an app may open by a relative path."""
    skipped = set(_NOT_DATA) | set(skip)
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return []
    found = []
    for entry in entries:
        name = entry.name
        if name.startswith(".") or name in skipped or _METADATA.match(name):
            continue
        if entry.is_dir() and (entry / "__init__.py").exists():
            continue  # a local package: imported, not opened
        found.append(f"{name}/" if entry.is_dir() else name)
    return found


def relative_path_uses(
    root: Path,
    *,
    app_package: str,
    db_url: str | None,
    env_file: str | None,
    uploads_dir: Path | None,
) -> list[str]:
    """What the app at ``root`` can reach by a relative path, as short phrases.

    Args:
        root: The project directory.
        app_package: The top-level package of the app (never data).
        db_url: The config's ``db_url``.
        env_file: The config's ``env_file`` (loaded relative to the project: not data).
        uploads_dir: Where uploads go when the app uses uploads, else None.

    Returns:
        Phrases such as ``"the database sqlite:///reflex.db"``; empty when
        nothing the app does depends on the working directory.
    """
    uses = []
    if db_url and _RELATIVE_SQLITE.match(db_url):
        uses.append(f"the database {db_url}")
    if uploads_dir is not None and not uploads_dir.is_absolute():
        uses.append(f"uploads into {uploads_dir}/")
    skip = {app_package.split(".", 1)[0]}
    skip |= {Path(p).name for p in (env_file or "").split(":") if p}
    if db_url and (absolute := re.match(r"^sqlite(\+\w+)?:///(/.+)$", db_url)):
        skip.add(Path(absolute.group(2)).name)  # its database, reached by an absolute path
    data = _data_beside_code(root, skip)
    if data:
        shown = ", ".join(data[:5]) + (f" and {len(data) - 5} more" if len(data) > 5 else "")
        uses.append(f"{shown} beside its code")
    return uses


def first_worker() -> bool:
    """False in the second and later worker processes of a multi-process server.

    uvicorn (``--workers``) and granian start their workers with
    ``multiprocessing``, numbered from 1 in the order started (the number
    behind ``SpawnProcess-1``); a process that no ``multiprocessing`` parent
    started is a server of its own.
    """
    if multiprocessing.parent_process() is None:
        return True
    identity = multiprocessing.current_process()._identity
    return not identity or identity[-1] == 1


def warn_relative_paths(root: Path, cwd: Path, uses: list[str], *, app_name: str) -> None:
    """Log, once per host, that ``uses`` resolve against ``cwd`` instead of ``root``.

    Nothing when ``cwd`` is the project or the app uses no relative path.
    """
    if not uses or cwd.resolve() == root.resolve():
        return
    level = logging.WARNING if first_worker() else logging.DEBUG
    logger.log(
        level,
        "reflex-buildd: %s runs in this process, whose working directory is %s, not its "
        "project %s: relative paths resolve there, and the app uses some: %s. "
        'mount(..., backend="process") runs it in the project, as `reflex run` does.',
        app_name,
        cwd,
        root,
        "; ".join(uses),
    )
