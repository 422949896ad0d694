"""Where the dev servers of ``reflex-buildd dev`` listen: the ``REFLEX_BUILDD_DEV`` contract.

``reflex-buildd dev`` writes it (:meth:`DevTarget.to_env`) for the host it runs;
:class:`~reflex_buildd_client.settings.Settings` reads it once
(:meth:`DevTarget.from_env`); the mount of the named project then forwards to
those servers (:mod:`.proxy`).

Only ``http://`` loopback addresses are accepted: a stray variable in a
production environment must never turn a mount into a proxy to elsewhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import InvalidConfigError
from ..serve.prefix import normalize_mount_path

__all__ = ["DEV_ENV", "DevTarget"]

DEV_ENV = "REFLEX_BUILDD_DEV"
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class DevTarget:
    """Where the dev servers of one project listen, as ``reflex-buildd dev`` says.

    Attributes:
        project: The project's root directory (resolved).
        prefix: The mount prefix Vite serves under (``""`` or ``"/admin"``).
        frontend: The Vite dev server, ``http://127.0.0.1:PORT``.
        backend: Reflex's dev backend, ``http://127.0.0.1:PORT``.
        routes_file: Where the backend writes its route paths (JSON list).
        lockfiles_dir: Where the Reflex side keeps Reflex's ``reflex.lock/``
            (seeded from the project's), so a session never writes the project's.
    """

    project: Path
    prefix: str
    frontend: str
    backend: str
    routes_file: Path | None = None
    lockfiles_dir: Path | None = None

    def to_env(self) -> str:
        """The value of ``REFLEX_BUILDD_DEV`` that names this target."""
        return json.dumps(
            {
                "project": str(self.project),
                "prefix": self.prefix,
                "frontend": self.frontend,
                "backend": self.backend,
                "routes_file": str(self.routes_file) if self.routes_file else None,
                "lockfiles_dir": str(self.lockfiles_dir) if self.lockfiles_dir else None,
            }
        )

    @classmethod
    def from_env(cls, value: str) -> DevTarget:
        """Parse and check ``REFLEX_BUILDD_DEV``.

        Raises:
            InvalidConfigError: If it is not the JSON the dev command writes,
                or a target is not an ``http://`` loopback address.
        """
        try:
            data = json.loads(value)
            routes, locks = data.get("routes_file"), data.get("lockfiles_dir")
            target = cls(
                project=Path(str(data["project"])),
                prefix=normalize_mount_path(str(data["prefix"]) or "/", what="dev prefix"),
                frontend=_loopback(str(data["frontend"])),
                backend=_loopback(str(data["backend"])),
                routes_file=Path(str(routes)) if routes else None,
                lockfiles_dir=Path(str(locks)) if locks else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidConfigError(f"{DEV_ENV} is malformed: {exc}") from None
        return target


def _loopback(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in _LOOPBACK or parts.port is None:
        raise ValueError(f"{url!r:.80} is not http://<loopback>:<port>")
    return f"http://{parts.netloc}"
