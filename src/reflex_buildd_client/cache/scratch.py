"""Names of scratch directories in the cache's ``tmp/``, and whose they are.

A scratch directory is named ``<kind>-<key12>-<pid>-<random>-<host>``, where
``<host>`` is a short digest of the machine's name. A process may remove
another's scratch only when both ran on this machine and the owner's pid is
dead: on a cache shared between machines, a pid from elsewhere means nothing
here, and the other machine's live build must not lose its files.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from .status import process_alive
from .store import SCRATCH_KINDS, host_tag

__all__ = ["ScratchOwner", "owner_of"]


@dataclass(frozen=True)
class ScratchOwner:
    """Who made a scratch directory."""

    kind: str
    pid: int
    host: str

    @property
    def here(self) -> bool:
        """Whether it was made on this machine."""
        return self.host == host_tag()

    def dead(self) -> bool:
        """True only when the owner ran here and is gone (never for other machines)."""
        if not self.here or self.pid == os.getpid():
            return False
        return (
            process_alive({"pid": self.pid, "host": socket.gethostname(), "pid_start": None})
            is False
        )


def owner_of(name: str) -> ScratchOwner | None:
    """Parse a scratch directory name; None for anything else."""
    parts = name.split("-")
    if len(parts) != 5 or parts[0] not in SCRATCH_KINDS or not parts[2].isdigit():
        return None
    return ScratchOwner(kind=parts[0], pid=int(parts[2]), host=parts[4])
