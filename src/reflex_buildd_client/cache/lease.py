"""Leases: which live hosts serve which artifact, and when each was last used.

A host that serves an artifact holds a **lease** on it for as long as it runs,
so that garbage collection never removes what a live reader uses (a page
open in a browser still loads its lazy chunks from it). A lease is one small file::

    <root>/v1/leases/<key>/<host>-<pid>-<random>.json   {pid, host, pid_start, time}

created with a rename (never seen half-written) and kept ``flock``-ed by its
holder for as long as the lease lasts. It ends with :meth:`Lease.release` or
with the process: a lease file left behind by a SIGKILL is **stale**, judged
with the rule of the build status records (:mod:`.status`): on its own host by
pid and process start time, from another host by probing the ``flock``, which
the kernel drops with the holder.

Taking a lease and evicting an artifact both happen under the key's build
lock, and the lease is taken *before* the artifact is opened: either gc sees
the lease and keeps the artifact, or the host sees that the artifact is gone
and obtains it again. There is no window in which a host reads an artifact
that gc is removing.

**Last used** is the mtime of ``<root>/v1/used/<key>``, touched each time a
lease is taken (hosts start, workers restart), and "now" for an artifact with
a live lease. The artifact's own files are hard links into the shared blob
store and are never touched: their mtimes would be shared with every other
artifact holding the same bytes.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .locks import key_lock
from .status import process_alive, this_process
from .store import Cache

try:  # flock keeps a lease alive exactly as long as its holder; POSIX only.
    import fcntl
except ImportError:  # pragma: no cover - Windows: pid liveness only
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "Lease",
    "LeaseRecord",
    "clean_stale_leases",
    "last_used",
    "live_leases",
    "mark_used",
    "read_leases",
    "take_lease",
]

# How long a host waits for the key's lock to take a lease: it is only held
# for short checks (a build of this key cannot run: its artifact exists).
_LOCK_TIMEOUT = 30.0


@dataclass(frozen=True)
class LeaseRecord:
    """One lease file and whether its holder is alive."""

    key: str
    path: Path
    pid: int
    host: str
    time: float
    alive: bool


class Lease:
    """A held lease; release it (or let the process end) to end it."""

    def __init__(self, key: str, path: Path, fd: int) -> None:
        self.key = key
        self.path = path
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        """Whether this lease is still held."""
        return self._fd is not None

    def release(self) -> None:
        """End the lease (idempotent)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        # Unlink first: a prober that opens the file after the unlock must
        # not find a file it could mistake for a stale lease of a live host.
        self.path.unlink(missing_ok=True)
        os.close(fd)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def mark_used(cache: Cache, key: str) -> None:
    """Record that ``key`` was used now (best effort: a read-only cache still serves)."""
    path = cache.used_path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        os.utime(path)
    except OSError:
        pass


def take_lease(cache: Cache, key: str, *, lock_timeout: float = _LOCK_TIMEOUT) -> Lease | None:
    """Lease the artifact of ``key`` for this process.

    Returns:
        The lease, or None if the cache holds no artifact for ``key`` (never
        built, or evicted or quarantined a moment ago) or its lock stayed
        busy: obtain the artifact again, then retry.
    """
    directory = cache.leases_dir(key)
    with key_lock(cache, key, lock_timeout) as held:
        if not held or not cache.has_manifest(key):
            return None
        # Under the lock: gc removes the directory of an evicted key under it too.
        directory.mkdir(parents=True, exist_ok=True)
        me = this_process()
        path, tmp = cache.new_lease_paths(key, str(me["host"]), int(me["pid"]))
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, json.dumps({"key": key, "time": time.time(), **me}).encode())
            if fcntl is not None:
                # Locked before the rename: no prober ever sees it unlocked.
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(tmp, path)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        mark_used(cache, key)
        return Lease(key, path, fd)


def _flock_held(path: Path) -> bool:
    if fcntl is None:  # pragma: no cover
        return True  # cannot tell: keep it (gc must never remove what is in use)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return True  # no flock on this filesystem: assume alive
    finally:
        os.close(fd)  # also drops a lock we may have taken
    return False


def _record_alive(record: dict[str, Any], path: Path) -> bool:
    alive = process_alive(record)
    if alive is None:  # another host: its kernel holds the flock while it lives
        alive = _flock_held(path)
    return alive


def read_leases(cache: Cache, key: str) -> list[LeaseRecord]:
    """Every lease file of ``key`` with its holder's liveness."""
    records = []
    for path in cache.lease_paths(key):
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            continue  # released while we looked
        except (OSError, ValueError):
            data = {}  # torn by a foreign writer: judged by liveness below
        records.append(
            LeaseRecord(
                key=key,
                path=path,
                pid=int(data.get("pid", 0)),
                host=str(data.get("host", "")),
                time=float(data.get("time", 0.0)),
                alive=_record_alive(data, path) if data else _flock_held(path),
            )
        )
    return records


def live_leases(cache: Cache) -> dict[str, int]:
    """Number of live leases per key (keys without one are left out)."""
    root = cache.leases_root
    try:
        keys = [p.name for p in root.iterdir() if p.is_dir()]
    except FileNotFoundError:
        return {}
    counts = {}
    for key in keys:
        if n := sum(1 for r in read_leases(cache, key) if r.alive):
            counts[key] = n
    return counts


def clean_stale_leases(cache: Cache) -> int:
    """Remove the lease files of dead holders; return how many."""
    root = cache.leases_root
    try:
        keys = [p.name for p in root.iterdir() if p.is_dir()]
    except FileNotFoundError:
        return 0
    removed = 0
    for key in keys:
        for record in read_leases(cache, key):
            if not record.alive:
                record.path.unlink(missing_ok=True)
                removed += 1
    return removed


def last_used(cache: Cache, key: str, created: float) -> float:
    """When ``key`` was last leased (its creation time if never)."""
    try:
        return max(created, cache.used_path(key).stat().st_mtime)
    except OSError:
        return created
