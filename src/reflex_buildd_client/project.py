"""What a Reflex project is, found without importing Reflex.

Importing Reflex and the user's ``rxconfig.py`` costs about a second, too much
for keying at every host start, so the app name is read from ``rxconfig.py``
syntactically. Where it is not a literal, ``REFLEX_APP_NAME`` must say it.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import InputReadError, ProjectNotFoundError

__all__ = ["Project", "config_literal", "find_project", "find_project_upward", "project_id"]


@dataclass(frozen=True)
class Project:
    """A Reflex project on disk.

    Attributes:
        root: Absolute, resolved path of the directory holding ``rxconfig.py``.
        app_name: The ``app_name`` of its config (also its package's name).
    """

    root: Path
    app_name: str


def _literal_keyword(source: str, name: str) -> str | None:
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        for keyword in node.keywords:
            if (
                keyword.arg == name
                and isinstance(keyword.value, ast.Constant)
                and isinstance(keyword.value.value, str)
            ):
                return keyword.value.value
    return None


def _literal_app_name(source: str) -> str | None:
    return _literal_keyword(source, "app_name")


def config_literal(root: Path, name: str) -> str | None:
    """A string-literal keyword of the config call in ``root/rxconfig.py``.

    Returns None when the file is unreadable or the value is not a literal.
    """
    try:
        return _literal_keyword((root / "rxconfig.py").read_text(encoding="utf-8"), name)
    except (OSError, SyntaxError, ValueError):
        return None


def find_project(path: str | os.PathLike[str], *, app_name: str = "") -> Project:
    """Validate ``path`` as a Reflex project and read its app name.

    ``app_name`` overrides the one in ``rxconfig.py`` (Reflex's ``REFLEX_APP_NAME``, which
    :class:`~reflex_buildd_client.settings.Settings` reads).

    Raises:
        ProjectNotFoundError: If the directory or its ``rxconfig.py`` is missing,
            or the app name cannot be determined.
        InputReadError: If ``rxconfig.py`` cannot be read (permissions, I/O).
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        where = f"{root} is not a directory"
        if not root.is_absolute():
            # A relative project= resolves against the process's working
            # directory, which for a host is wherever it was started from.
            where = f"{root} is not a directory (relative to the working directory {Path.cwd()})"
        raise ProjectNotFoundError(f"Reflex project not found: {where}")
    root = root.resolve()
    config = root / "rxconfig.py"
    if not config.is_file():
        raise ProjectNotFoundError(f"{root} is not a Reflex project: it has no rxconfig.py")
    try:
        literal = _literal_app_name(config.read_text(encoding="utf-8"))
    except SyntaxError as exc:
        raise ProjectNotFoundError(f"{config} has a syntax error: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ProjectNotFoundError(f"{config} is not UTF-8 text: {exc}") from exc
    except OSError as exc:
        raise InputReadError.wrap(exc, config) from exc
    app_name = app_name or literal or ""
    if not app_name:
        raise ProjectNotFoundError(
            f"cannot read app_name from {config}: pass it as a string literal "
            "or set REFLEX_APP_NAME"
        )
    return Project(root=root, app_name=app_name)


def find_project_upward(start: str | os.PathLike[str], *, app_name: str = "") -> Project:
    """The project holding ``start``: the nearest directory at or above it with ``rxconfig.py``.

    What ``reflex-buildd`` does without a PROJECT argument, like git looks
    for ``.git``: any subdirectory of a project (its app package, ``assets/``)
    names the project.

    Raises:
        ProjectNotFoundError: If no directory from ``start`` up has ``rxconfig.py``.
    """
    here = Path(start).expanduser().resolve()
    for directory in (here, *here.parents):
        if (directory / "rxconfig.py").is_file():
            return find_project(directory, app_name=app_name)
    raise ProjectNotFoundError(
        f"no rxconfig.py in {here} or any directory above it: run this inside a Reflex "
        "project or pass the project directory"
    )


def project_id(root: Path) -> str:
    """A short stable name for a project directory on this machine (its place in the cache)."""
    import blake3

    return blake3.blake3(str(root).encode()).hexdigest()[:16]
