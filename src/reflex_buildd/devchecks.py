"""What ``reflex-buildd dev`` checks before it starts anything.

Each check costs milliseconds and turns what used to surface late (a 404 page
at the printed URL, a warning after the dev servers came up, a port error
after Reflex compiled the app) into one line at once:

- the host's port is free (:func:`check_port`), else the line suggests a free
  ``--port``;
- the host app imports (:func:`import_host`), with ``REFLEX_BUILDD_DEV``
  already set, exactly as uvicorn would import it;
- the host mounts the project, at ``--path`` (:func:`check_mounts`): a mount
  knows its path when :func:`~reflex_buildd_client.mount.mount`,
  ``PathDispatcher`` or ``restore_mount_path`` placed it
  (:mod:`reflex_buildd_client.dev.declared`).
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import Any

from reflex_buildd_client.dev.declared import Declared, declared_mounts
from reflex_buildd_client.errors import ReflexBuilddError

__all__ = ["DevSetupError", "PortInUseError", "check_mounts", "check_port", "import_host"]

# How far above a busy port to look for a free one to suggest.
_SUGGEST_WITHIN = 50


class DevSetupError(ReflexBuilddError, ValueError):
    """The host app cannot be imported, or it does not mount the project at ``--path``."""


class PortInUseError(ReflexBuilddError, RuntimeError):
    """Another process listens on the host's port."""


def _bindable(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As uvicorn binds: a port in TIME_WAIT is free for it, so for us too.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def check_port(host: str, port: int) -> None:
    """Fail if ``host:port`` cannot be bound, naming a free port to pass instead.

    Raises:
        PortInUseError: If the port is taken (or needs privileges).
    """
    if _bindable(host, port):
        return
    free = next(
        (p for p in range(port + 1, min(port + _SUGGEST_WITHIN, 65535) + 1) if _bindable(host, p)),
        None,
    )
    hint = f"pass --port {free}" if free is not None else "pass another --port"
    raise PortInUseError(
        f"port {port} on {host} is in use (another server?) or needs privileges: {hint}"
    )


def import_host(app: str) -> Any:
    """Import ``module:attribute`` as uvicorn does (``--app-dir`` already on ``sys.path``).

    Raises:
        DevSetupError: If the module or the attribute does not exist. An
            exception raised by the host's own code propagates with its traceback.
    """
    from uvicorn.importer import ImportFromStringError, import_from_string

    try:
        return import_from_string(app)
    except ImportFromStringError as exc:
        raise DevSetupError(f"cannot import the host app --app {app}: {exc}") from None


def _where(mounts: list[Declared]) -> str:
    shown = [f"{m.project} at {', '.join(sorted(m.paths)) or '?'}" for m in mounts]
    return "; it mounts " + ", ".join(shown) if shown else "; it creates no mount"


def check_mounts(app: str, root: Path, prefix: str) -> None:
    """Fail unless the imported host mounts the project at ``root`` at ``prefix``.

    A mount whose path the host did not declare passes (the dev proxy refuses
    requests under another prefix at run time).

    Raises:
        DevSetupError: If no mount of the project was created, or every path
            the host declared for it differs from ``prefix``.
    """
    mounts = declared_mounts()
    mine = [m for m in mounts if m.names(root)]
    if not mine:
        raise DevSetupError(
            f"the host app {app} does not mount {root}{_where(mounts)}: pass the project it "
            "mounts, or mount this one (mount(app, PATH, project=...))"
        )
    paths = set().union(*(m.paths for m in mine))
    if paths and prefix not in paths and not any(not m.paths for m in mine):
        shown = " and ".join(sorted(p or "/" for p in paths))
        first = sorted(paths)[0] or "/"
        raise DevSetupError(
            f"the host app {app} mounts {root.name} at {shown}, not {prefix or '/'}: "
            f"pass --path {first}"
        )
