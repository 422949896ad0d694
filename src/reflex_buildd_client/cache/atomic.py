"""Durable writes: the one way a file of the cache is replaced, and a rename made durable.

pip's and ccache's discipline: write a unique temp file on the same filesystem, fsync it,
rename it over the target, fsync the directory. A crash then leaves the old or the new file,
never an empty or half-written one.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

__all__ = ["fsync_dir", "write_atomic"]


def write_atomic(path: Path, data: bytes, *, durable: bool = True, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new bytes, never a mix.

    Written to a unique temp file beside it (same filesystem), fsynced when
    ``durable`` (a crash then leaves the old or the new file, never an empty
    one), renamed over ``path``, and the directory fsynced. Parent
    directories are created.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in ``path`` durable (a vanished ``path`` has nothing to sync)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
