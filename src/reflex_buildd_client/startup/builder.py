"""The builder a host calls on a miss (policy ``build``), without importing it.

The host side is light and must not depend on the daemon package, so the
builder is injected: ``ReflexMount(..., builder=...)`` takes any callable of
the :class:`Builder` shape, and by default the one that the installed
reflex-buildd registers under the entry point group ``reflex_buildd.builder``
is loaded, only when a build is really needed.
"""

from __future__ import annotations

from importlib import metadata
from typing import Protocol

from ..cache.store import Artifact, Cache
from ..errors import InvalidConfigError
from ..keys.schema import KeyInputs
from ..project import Project
from ..settings import Settings

__all__ = ["ENTRY_POINT_GROUP", "Builder", "default_builder"]

ENTRY_POINT_GROUP = "reflex_buildd.builder"


class Builder(Protocol):
    """Builds ``project`` (whose inputs are ``inputs``) and publishes it as ``key``.

    Called with the key's build lock held, and the caller's settings (the JS runtime to
    find, the environment the build sees); raises ``BuildFailedError`` when the build fails
    (after recording the failure).
    """

    def __call__(
        self, project: Project, cache: Cache, *, key: str, inputs: KeyInputs, settings: Settings
    ) -> Artifact: ...


def default_builder() -> Builder:
    """The builder registered by the installed reflex-buildd.

    Raises:
        InvalidConfigError: If none is registered (a broken installation).
    """
    found = metadata.entry_points(group=ENTRY_POINT_GROUP)
    for entry in sorted(found, key=lambda e: e.name):
        builder: Builder = entry.load()
        return builder
    raise InvalidConfigError(
        f"no builder is registered under the entry point group {ENTRY_POINT_GROUP!r}: "
        "reinstall reflex-buildd (pip install reflex-buildd, or pip install -e . in a "
        "checkout), or pass builder= to the mount"
    )
