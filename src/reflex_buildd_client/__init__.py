"""reflex-buildd's client: mount a prebuilt Reflex app on any path of an ASGI host.

Also the shared contract with the daemon (keys, cache layout, manifests), so
the two can never disagree.

The names below are imported on first use (PEP 562): the CLI and the daemon
import submodules such as ``reflex_buildd_client.inputs.sources`` and must not pay
for the ASGI side (asyncio, the static server, the mount) on every command.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The error classes: one small module without dependencies, imported at once.
from .errors import *  # noqa: F403
from .errors import __all__ as _ERRORS

if TYPE_CHECKING:
    # "X as X": re-exported names, for type checkers (runtime: __getattr__ below).
    from .dispatch import PathDispatcher as PathDispatcher
    from .dispatch import isolate_scope as isolate_scope
    from .dispatch import restore_mount_path as restore_mount_path
    from .exposition import metrics_app as metrics_app
    from .mount import MountOptions as MountOptions
    from .mount import ReflexMount as ReflexMount
    from .mount import mount as mount
    from .settings import Settings as Settings
    from .settings import StartupPolicy as StartupPolicy

_HOMES = {
    "PathDispatcher": "dispatch",
    "restore_mount_path": "dispatch",
    "isolate_scope": "dispatch",
    "metrics_app": "exposition",
    "MountOptions": "mount",
    "ReflexMount": "mount",
    "mount": "mount",
    "Settings": "settings",
    "StartupPolicy": "settings",
}

__all__ = sorted([*_ERRORS, *_HOMES])


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        module = importlib.import_module(f".{_HOMES[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
