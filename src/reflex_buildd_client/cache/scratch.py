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
import uuid
from dataclasses import dataclass

import blake3

from .status import process_alive

__all__ = ["ScratchOwner", "host_tag", "owner_of", "scratch_name"]

# build: builds; gc: artifacts being evicted; pull: downloads from the remote tier.
KINDS = ("build", "gc", "pull")


def host_tag(hostname: str | None = None) -> str:
    """Eight hex digits naming a machine (no dashes, unlike host names)."""
    name = socket.gethostname() if hostname is None else hostname
    return blake3.blake3(name.encode()).hexdigest()[:8]


def scratch_name(kind: str, key: str) -> str:
    """A fresh scratch directory name for this process."""
    return f"{kind}-{key[:12]}-{os.getpid()}-{uuid.uuid4().hex[:8]}-{host_tag()}"


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
    if len(parts) != 5 or parts[0] not in KINDS or not parts[2].isdigit():
        return None
    return ScratchOwner(kind=parts[0], pid=int(parts[2]), host=parts[4])
