"""Make every code path of an in-process Reflex app see its own project's config.

Reflex keeps its config on a ``RegistrationContext`` held in a
``ContextVar``; wherever no context is attached (a thread started without
copying the context, or after ``App.__post_init__`` calls
``reload_config()``), it loads ``rxconfig.py`` afresh through
``reflex_base.config._get_config()``, whose default root is the *current
directory*. In a host that runs elsewhere that is the host's directory, which
has no ``rxconfig.py``: Reflex silently falls back to an empty config, and
``db_url``, ``redis_url``, ``state_manager_mode`` or plugins vanish in event
handlers, lifespan tasks and API routes.

:func:`pin_project_config` makes the project root the default of that one
loader, for the whole process (Reflex keeps one app per process anyway), and
loads the config's ``env_file`` the way ``reflex run`` would find it: relative
to the project.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ReflexBuilddError

__all__ = ["pin_project_config", "pinned_root"]

_lock = threading.Lock()
_pinned: Path | None = None


def pinned_root() -> Path | None:
    """The project whose config this process loads by default, if pinned."""
    return _pinned


def pin_project_config(root: Path) -> None:
    """Make Reflex load ``root``'s ``rxconfig.py`` wherever it loads one by default.

    Idempotent for the same root.

    Raises:
        ReflexBuilddError: If another project's config is already pinned here.
    """
    global _pinned
    root = root.resolve()
    with _lock:
        if _pinned is not None:
            if _pinned != root:
                raise ReflexBuilddError(
                    f"this process already runs the Reflex config of {_pinned}; "
                    f"cannot also run {root}"
                )
            return
        import reflex_base.config as reflex_config

        reflex_config._get_config = _project_loader(reflex_config._get_config, root)
        _pinned = root


def _project_loader(original: Callable[..., Any], root: Path) -> Callable[..., Any]:
    env_loaded = False

    def load(project_root: Path | None = None) -> Any:
        nonlocal env_loaded
        config = original(project_root or root)
        if project_root is None and not env_loaded:
            env_loaded = True
            if getattr(config, "env_file", None) and _load_env_files(config.env_file, root):
                # The file set REFLEX_* overrides: load again so they apply.
                config = original(root)
        return config

    return load


def _load_env_files(value: str, root: Path) -> bool:
    """Load ``env_file`` entries relative to the project, as ``reflex run`` sees them."""
    from reflex_base.environment import _load_dotenv_from_files, _paths_from_env_files

    paths = [p if p.is_absolute() else root / p for p in _paths_from_env_files(value)]
    present = [p for p in paths if p.exists()]
    _load_dotenv_from_files(present)
    return bool(present)
