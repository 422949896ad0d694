"""Cross-process locks of the cache (filelock): a key's build lock, and a probe of any lock.

A key's lock serializes its publish, lease, quarantine and eviction; a caller that cannot get
it within its timeout backs off. ``flock`` is unreliable on NFS, so nobody relies on a lock
alone to see an artifact: waiters poll for the manifest.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import Cache

__all__ = ["key_lock", "lock_held"]


def lock_held(path: Path) -> bool:
    """Whether another process holds the lock file at ``path`` right now (a probe)."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


@contextlib.contextmanager
def key_lock(cache: Cache, key: str, timeout: float) -> Iterator[bool]:
    """Hold the build lock of ``key`` if it can be had within ``timeout``.

    Yields whether it is held: publish, lease, quarantine and eviction of one
    key all happen under it, so a caller that did not get it backs off.
    """
    from filelock import FileLock, Timeout  # the client imports it lazily elsewhere too

    lock = FileLock(str(cache.lock_path(key)))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
