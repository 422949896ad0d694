"""The mounts a host created while it was imported, and the paths it put them at.

``reflex-buildd dev`` imports the host app before it starts anything, then
asks here whether the host mounts the project at all and at which path, so
that a wrong ``--path`` or a project the host does not mount is one clear
line at once, not a 404 page or a warning after the dev servers came up.

Each :class:`~reflex_buildd_client.mount.ReflexMount` notes itself when it is
created; whoever places it at a path says which: :func:`~reflex_buildd_client.mount.mount`,
:class:`~reflex_buildd_client.dispatch.PathDispatcher` and
:func:`~reflex_buildd_client.dispatch.restore_mount_path`. A mount placed by
other means (a router of its own) has no known path; the dev proxy still
refuses requests that arrive under another prefix.

Weak references only: nothing here keeps a mount (or its host) alive.
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Declared", "declare_mount", "declare_path", "declared_mounts"]


@dataclass
class Declared:
    """One mount as its host declared it.

    Attributes:
        project: The ``project`` argument as given (relative to the working directory).
        paths: The paths the host placed the mount at (normalized: ``""``, ``"/admin"``).
    """

    project: str | os.PathLike[str]
    paths: set[str] = field(default_factory=set)

    def names(self, root: Path) -> bool:
        """Whether this mount's project is the project at ``root`` (resolved)."""
        return Path(self.project).expanduser().resolve() == root.resolve()


_declared: weakref.WeakKeyDictionary[object, Declared] = weakref.WeakKeyDictionary()


def declare_mount(mount: object, project: str | os.PathLike[str]) -> None:
    """Note a new mount of ``project`` (called by the mount itself)."""
    _declared[mount] = Declared(project)


def declare_path(mount: object, path: str) -> None:
    """Note that ``mount`` is placed at the normalized ``path`` (no-op for other apps)."""
    if (declared := _declared.get(mount)) is not None:
        declared.paths.add(path)


def declared_mounts() -> list[Declared]:
    """Every live mount created in this process, in no particular order."""
    return list(_declared.values())
