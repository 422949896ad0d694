"""reflex-buildd's client: mount a prebuilt Reflex app on any path of an ASGI host.

Also the shared contract with the daemon (keys, cache layout, manifests), so
the two can never disagree.
"""

from __future__ import annotations

from .dispatch import PathDispatcher, restore_mount_path
from .errors import (
    ArtifactMissingError,
    BuildFailedError,
    CorruptArtifactError,
    InputsConfigError,
    InvalidConfigError,
    InvalidPathError,
    JSRuntimeNotFoundError,
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
    "CorruptArtifactError",
    "InputsConfigError",
    "InvalidConfigError",
    "InvalidPathError",
    "JSRuntimeNotFoundError",
    "MountOptions",
    "PathDispatcher",
    "ProjectNotFoundError",
    "ReadOnlyCacheError",
    "ReflexBuilddError",
    "ReflexMount",
    "Settings",
    "StartupPolicy",
    "WaitTimeoutError",
    "mount",
    "restore_mount_path",
]
