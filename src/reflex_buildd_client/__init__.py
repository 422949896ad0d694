"""reflex-buildd's client: mount a prebuilt Reflex app on any path of an ASGI host.

Also the shared contract with the daemon (keys, cache layout, manifests), so
the two can never disagree.

The names below are imported on first use (PEP 562): the CLI and the daemon
import submodules such as ``reflex_buildd_client.sources`` and must not pay
for the ASGI side (asyncio, the static server, the mount) on every command.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .dispatch import PathDispatcher, isolate_scope, restore_mount_path
    from .errors import (
        ArtifactMissingError,
        BuildFailedError,
        CacheIOError,
        CorruptArtifactError,
        InputReadError,
        InputsConfigError,
        InvalidConfigError,
        InvalidPathError,
        JSRuntimeNotFoundError,
        LockTimeoutError,
        ProjectNotFoundError,
        ReadOnlyCacheError,
        ReflexBuilddError,
        WaitTimeoutError,
    )
    from .mount import MountOptions, ReflexMount, mount
    from .settings import Settings, StartupPolicy

__all__ = [
    "ArtifactMissingError",
    "BuildFailedError",
    "CacheIOError",
    "CorruptArtifactError",
    "InputReadError",
    "InputsConfigError",
    "InvalidConfigError",
    "InvalidPathError",
    "JSRuntimeNotFoundError",
    "LockTimeoutError",
    "MountOptions",
    "PathDispatcher",
    "ProjectNotFoundError",
    "ReadOnlyCacheError",
    "ReflexBuilddError",
    "ReflexMount",
    "Settings",
    "StartupPolicy",
    "WaitTimeoutError",
    "isolate_scope",
    "mount",
    "restore_mount_path",
]

_HOMES = {
    "PathDispatcher": "dispatch",
    "restore_mount_path": "dispatch",
    "isolate_scope": "dispatch",
    "MountOptions": "mount",
    "ReflexMount": "mount",
    "mount": "mount",
    "Settings": "settings",
    "StartupPolicy": "settings",
}


def __getattr__(name: str) -> Any:
    if name in __all__:
        module = importlib.import_module(f".{_HOMES.get(name, 'errors')}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
