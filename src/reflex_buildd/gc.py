"""Garbage collection: evict least recently used artifacts, safely.

The decision is a pure function (:func:`plan_gc`): artifacts with the disk
space each one holds (by inode, so bytes shared through the blob store count
once), when each was last used and whether something pins it; out come the
keys to evict, least recently used first, until the cache fits ``max_size``
and nothing is older than ``max_age``. Pinned artifacts are never evicted:
those leased by a live host (it still serves them) and the current key of a live
daemon.

:func:`collect` does the I/O around it. Each eviction takes the key's lock
(skipping the key if someone holds it: a build, a host taking a lease),
re-reads the leases under it, renames the artifact directory out of
``artifacts/`` into ``tmp/gc-<key12>-<pid>-<rand>`` (readers see all of it or
none of it) and only then deletes it. Then blobs whose link count is 1 (no
artifact links them any more) go, and so do scratch directories of dead
builders and gc runs on this host, stale lease files and old quarantined
artifacts. A temp directory of a live process is never touched.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from reflex_buildd_client.cache.atomic import fsync_dir
from reflex_buildd_client.cache.lease import clean_stale_leases, last_used, live_leases, read_leases
from reflex_buildd_client.cache.locks import key_lock
from reflex_buildd_client.cache.scratch import owner_of
from reflex_buildd_client.cache.status import append_journal, process_alive
from reflex_buildd_client.cache.store import Artifact, Cache
from reflex_buildd_client.errors import CorruptArtifactError, LockTimeoutError
from reflex_buildd_client.settings import DEFAULT_GC_MAX_SIZE, Settings

__all__ = [
    "DEFAULT_MAX_SIZE",
    "ArtifactInfo",
    "Candidate",
    "GcPlan",
    "GcPolicy",
    "GcReport",
    "auto_gc",
    "auto_policy",
    "collect",
    "exclusive_sizes",
    "plan_gc",
    "scan",
    "unique_size",
]

logger = logging.getLogger("reflex_buildd")

# The cap the daemon applies after each publish unless told otherwise. With
# shared blobs a build of a typical app adds well under 1 MiB, so this keeps
# hundreds of builds, and it is a small fraction of one warm workspace
# (node_modules, ~150 MiB) that every project needs anyway.
DEFAULT_MAX_SIZE = DEFAULT_GC_MAX_SIZE
# Scratch of a dead pid is removed only once it has been quiet this long: the
# pid rule holds on this host, and a cache shared with other machines may hold
# their live builds' scratch under pids that mean nothing here.
SCRATCH_GRACE = 600.0
# Quarantined artifacts are kept this long for a post-mortem.
QUARANTINE_KEEP = 7 * 86400.0


# -- the decision (pure) --------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """What gc needs to know about one artifact.

    Attributes:
        key: The artifact's key.
        last_used: When it was last used (epoch seconds).
        files: Disk space it holds: an identity per inode (shared inodes have
            the same identity in every artifact) and its size.
        pinned: Why it must stay ("" if nothing pins it).
    """

    key: str
    last_used: float
    files: Mapping[Hashable, int]
    pinned: str = ""


@dataclass(frozen=True)
class GcPolicy:
    """What gc aims for; None means no limit of that kind."""

    max_size: int | None = None
    max_age: float | None = None


@dataclass(frozen=True)
class GcPlan:
    """What gc decided (before doing it)."""

    evict: tuple[str, ...]
    reasons: Mapping[str, str]
    size_before: int
    size_after: int
    kept_pinned: tuple[str, ...] = ()


def unique_size(candidates: Iterable[Candidate]) -> int:
    """Disk space of the union of the candidates' inodes."""
    sizes: dict[Hashable, int] = {}
    for c in candidates:
        sizes.update(c.files)
    return sum(sizes.values())


def exclusive_sizes(candidates: Sequence[Candidate]) -> dict[str, int]:
    """Per key, the bytes no other candidate shares: what evicting it alone frees."""
    refs = Counter(ident for c in candidates for ident in c.files)
    return {
        c.key: sum(size for ident, size in c.files.items() if refs[ident] == 1) for c in candidates
    }


def plan_gc(candidates: Sequence[Candidate], policy: GcPolicy, *, now: float) -> GcPlan:
    """Pick the artifacts to evict: least recently used first, never a pinned one.

    An artifact goes if it is older than ``max_age`` (by last use), or while
    the total is above ``max_size``. Evicting one frees only the inodes that
    no remaining artifact shares.
    """
    refs = Counter(ident for c in candidates for ident in c.files)
    sizes: dict[Hashable, int] = {}
    for c in candidates:
        sizes.update(c.files)
    total = before = sum(sizes.values())
    evict: list[str] = []
    reasons: dict[str, str] = {}
    kept: list[str] = []
    for c in sorted(candidates, key=lambda c: (c.last_used, c.key)):
        too_old = policy.max_age is not None and now - c.last_used > policy.max_age
        too_big = policy.max_size is not None and total > policy.max_size
        if not (too_old or too_big):
            # Sorted by last use: later ones are younger, and the total only shrinks.
            break
        if c.pinned:
            kept.append(c.key)
            continue
        evict.append(c.key)
        reasons[c.key] = "older than max age" if too_old else "over the size cap"
        for ident in c.files:
            refs[ident] -= 1
            if refs[ident] == 0:
                total -= sizes[ident]
    return GcPlan(tuple(evict), reasons, before, total, tuple(kept))


# -- what is in the cache -------------------------------------------------


@dataclass(frozen=True)
class ArtifactInfo:
    """One artifact as ``ls`` shows it and gc weighs it."""

    key: str
    path: Path
    project: str
    app_name: str
    created: float
    last_used: float
    live_hosts: int
    apparent: int
    files: Mapping[Hashable, int] = field(repr=False)
    pinned: str = ""

    def candidate(self) -> Candidate:
        """The artifact as :func:`plan_gc` sees it."""
        return Candidate(self.key, self.last_used, self.files, self.pinned)


def _files_on_disk(artifact: Artifact) -> tuple[dict[Hashable, int], int]:
    files: dict[Hashable, int] = {}
    apparent = 0
    for file in [*(artifact.path / rel for rel in artifact.manifest.files), artifact.manifest_path]:
        try:
            st = os.lstat(file)
        except OSError:
            continue
        files[(st.st_dev, st.st_ino)] = st.st_size
        apparent += st.st_size
    return files, apparent


def daemon_keys(cache: Cache) -> set[str]:
    """The current keys of daemons that may be alive (another host's count)."""
    keys = set()
    for path in cache.daemon_record_paths():
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if process_alive(record) is not False and record.get("key"):
            keys.add(str(record["key"]))
    return keys


def scan(cache: Cache, *, now: float | None = None) -> list[ArtifactInfo]:
    """Every complete artifact in the cache, with its use, leases and sizes."""
    now = time.time() if now is None else now
    leases = live_leases(cache)
    daemons = daemon_keys(cache)
    infos = []
    for key in cache.keys():
        entry = cache.artifact_dir(key)
        try:
            manifest = cache.read_manifest(key)
        except CorruptArtifactError:
            continue  # verify reports broken ones
        if manifest is None:
            continue  # no manifest: not an artifact
        hosts = leases.get(entry.name, 0)
        pinned = (
            f"leased by {hosts} live host(s)"
            if hosts
            else "current key of a live daemon"
            if entry.name in daemons
            else ""
        )
        files, apparent = _files_on_disk(Artifact(entry, manifest))
        infos.append(
            ArtifactInfo(
                key=entry.name,
                path=entry,
                project=manifest.project.get("root", ""),
                app_name=manifest.project.get("app_name", ""),
                created=manifest.created,
                # In use right now is the most recent use there is.
                last_used=now if hosts else last_used(cache, entry.name, manifest.created),
                live_hosts=hosts,
                apparent=apparent,
                files=files,
                pinned=pinned,
            )
        )
    return infos


# -- doing it -------------------------------------------------------------


@dataclass
class GcReport:
    """What a gc run did (or, with ``dry_run``, would do)."""

    plan: GcPlan
    dry_run: bool
    evicted: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    blobs_removed: int = 0
    blob_bytes: int = 0
    scratch_removed: list[str] = field(default_factory=list)
    leases_removed: int = 0
    quarantine_removed: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """The report as ``gc --json`` prints it."""
        return {
            "dry_run": self.dry_run,
            "size_before": self.plan.size_before,
            "size_after": self.plan.size_after,
            "planned": list(self.plan.evict),
            "evicted": self.evicted,
            "skipped": self.skipped,
            "kept_pinned": list(self.plan.kept_pinned),
            "blobs_removed": self.blobs_removed,
            "blob_bytes": self.blob_bytes,
            "scratch_removed": self.scratch_removed,
            "leases_removed": self.leases_removed,
            "quarantine_removed": self.quarantine_removed,
        }


def evict(cache: Cache, key: str) -> str:
    """Remove the artifact of ``key`` unless it is busy or leased.

    Returns:
        "" if it was removed, else why not.
    """
    with key_lock(cache, key, 0) as held:
        if not held:
            return "its lock is held (a build or a host taking a lease)"
        if any(r.alive for r in read_leases(cache, key)):
            return "leased by a live host"
        trash = cache.scratch_path("gc", key)
        trash.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(cache.artifact_dir(key), trash)
        except FileNotFoundError:
            return "already gone"
        fsync_dir(cache.artifacts_dir)
        # Stale lease files only (live ones were ruled out under this lock).
        shutil.rmtree(cache.leases_dir(key), ignore_errors=True)
        cache.used_path(key).unlink(missing_ok=True)
    shutil.rmtree(trash, ignore_errors=True)
    cache.log_path(key).unlink(missing_ok=True)
    append_journal(cache, "evicted", key)
    return ""


def collect_blobs(cache: Cache, *, dry_run: bool = False) -> tuple[int, int]:
    """Remove blobs that no artifact links (link count 1); return (count, bytes).

    A publish that links a blob just as it goes falls back to making its own
    copy the blob (see publish.py), so this never breaks a build.
    """
    count = size = 0
    for blob in cache.blob_paths():
        try:
            st = blob.lstat()
        except FileNotFoundError:
            continue
        if st.st_nlink == 1:
            if not dry_run:
                blob.unlink(missing_ok=True)
            count += 1
            size += st.st_size
    return count, size


def _quiet_since(path: Path) -> float:
    """The newest mtime of ``path`` and its direct children."""
    newest = path.lstat().st_mtime
    try:
        for child in path.iterdir():
            newest = max(newest, child.lstat().st_mtime)
    except OSError:
        pass
    return newest


def clean_scratch(cache: Cache, *, now: float, dry_run: bool = False) -> list[str]:
    """Remove scratch directories of dead builders and gc runs on this host.

    Names are those of :mod:`reflex_buildd.scratch`; anything else, anything
    of a live pid or of another machine, and anything written to within
    :data:`SCRATCH_GRACE` stays.
    """
    removed = []
    try:
        entries = list(cache.tmp_dir().iterdir())
    except FileNotFoundError:
        return []
    for entry in entries:
        owner = owner_of(entry.name)
        if owner is None or not owner.dead():
            continue
        try:
            if now - _quiet_since(entry) < SCRATCH_GRACE:
                continue
        except FileNotFoundError:
            continue
        if not dry_run:
            shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry.name)
    return removed


def _clean_quarantine(cache: Cache, *, now: float, dry_run: bool) -> list[str]:
    removed = []
    for entry in cache.quarantined():
        marker = cache.quarantine_note(entry)
        try:
            when = (marker if marker.exists() else entry).stat().st_mtime
        except OSError:
            continue
        if now - when > QUARANTINE_KEEP:
            if not dry_run:
                shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    return removed


@contextlib.contextmanager
def _one_gc(cache: Cache, timeout: float) -> Iterator[None]:
    """Hold the cache's gc lock; filelock's ``Timeout`` becomes our :class:`LockTimeoutError`."""
    lock = FileLock(str(cache.gc_lock_path))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise LockTimeoutError(
            f"another gc holds {cache.gc_lock_path} (waited {timeout:g}s); try again later"
        ) from None
    try:
        yield
    finally:
        lock.release()


def collect(
    cache: Cache,
    policy: GcPolicy,
    *,
    dry_run: bool = False,
    now: float | None = None,
    lock_timeout: float = 60.0,
) -> GcReport:
    """Evict per ``policy``, then drop unreferenced blobs, dead scratch and stale leases.

    One gc at a time per cache (``locks/gc.lock``); ``lock_timeout=0`` skips
    the run when another one holds it.

    Raises:
        LockTimeoutError: If another gc holds the lock longer than ``lock_timeout``.
    """
    now = time.time() if now is None else now
    cache.ensure()
    with _one_gc(cache, lock_timeout):
        leases_removed = 0 if dry_run else clean_stale_leases(cache)
        plan = plan_gc([i.candidate() for i in scan(cache, now=now)], policy, now=now)
        report = GcReport(plan=plan, dry_run=dry_run, leases_removed=leases_removed)
        for key in plan.evict:
            if dry_run:
                continue
            why = evict(cache, key)
            if why:
                report.skipped[key] = why
            else:
                report.evicted.append(key)
        report.blobs_removed, report.blob_bytes = collect_blobs(cache, dry_run=dry_run)
        report.scratch_removed = clean_scratch(cache, now=now, dry_run=dry_run)
        report.quarantine_removed = _clean_quarantine(cache, now=now, dry_run=dry_run)
    return report


def auto_policy(settings: Settings) -> GcPolicy | None:
    """The daemon's automatic gc policy (``REFLEX_BUILDD_GC_MAX_SIZE``, default
    2 GiB, ``off`` disables it; ``REFLEX_BUILDD_GC_MAX_AGE``, default none)."""
    limits = settings.gc
    if limits is None:
        return None
    return GcPolicy(max_size=limits.max_size, max_age=limits.max_age)


def auto_gc(cache: Cache, settings: Settings) -> GcReport | None:
    """The daemon's gc after a publish: the settings' policy; never raises, never waits."""
    try:
        policy = auto_policy(settings)
        if policy is None:
            return None
        report = collect(cache, policy, lock_timeout=0)
    except LockTimeoutError:
        return None  # another gc is running: it does the job
    except Exception as exc:
        logger.warning("reflex-buildd: automatic gc failed: %s", exc)
        return None
    if report.evicted or report.blobs_removed:
        logger.info(
            "reflex-buildd: gc evicted %d artifact(s), %d blob(s)",
            len(report.evicted),
            report.blobs_removed,
        )
    return report
