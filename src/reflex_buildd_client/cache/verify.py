"""Check an artifact against its manifest, and move corrupt ones out of the way.

Every file the manifest lists is read and hashed (blake3) and compared with
its recorded digest and size. A host does this once per artifact and process,
when it first opens it (a few MB: milliseconds); ``reflex-buildd verify``
does it on demand for the whole cache.

A corrupt artifact is **quarantined**: its directory is renamed out of
``artifacts/`` into ``<root>/v1/quarantine/<key>-<time>-<pid>/`` (one atomic
rename, under the key's lock, so readers see either the whole artifact or no
artifact) with a ``QUARANTINE.json`` saying why. The key is then missing, so
the next demand rebuilds it. A corrupt file that is also the blob store's copy
of its digest (a hard link to the same inode) leaves the blob store too, so
no later publish links the bad bytes into a new artifact.
"""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path

import blake3

from ..errors import CorruptArtifactError
from .atomic import fsync_dir, write_atomic
from .locks import key_lock
from .manifest import Manifest
from .store import Artifact, Cache

__all__ = [
    "corruption",
    "find_problems",
    "quarantine",
    "read_checked",
    "read_verified",
    "verify_artifact",
    "verify_once",
]

_LOCK_TIMEOUT = 30.0
# Artifacts verified by this process: (directory, inode, manifest mtime).
_verified: set[tuple[str, int, int]] = set()


def _unsafe(rel: str) -> bool:
    # Manifest paths come from whoever could write the cache: only plain
    # relative paths below the artifact are files of it.
    parts = rel.split("/")
    return not rel or rel.startswith("/") or "\\" in rel or "\0" in rel or ".." in parts


def _read_file(root: Path, rel: str) -> bytes:
    """The bytes of ``root/rel``, never through a symlink (it could point anywhere)."""
    fd = os.open(root / rel, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    try:
        with os.fdopen(fd, "rb", closefd=False) as stream:
            return stream.read()
    finally:
        os.close(fd)


def read_checked(artifact: Artifact) -> tuple[dict[str, bytes], dict[str, str]]:
    """Read every file of ``artifact`` once and check it against the manifest.

    Returns:
        The bytes of every file that matches, and every file that does not,
        with why. A host serves exactly the bytes it checked here: reading
        them again later would serve whatever is on disk by then.
    """
    root = artifact.path
    real_root = root.resolve()
    contents: dict[str, bytes] = {}
    problems: dict[str, str] = {}
    for rel, entry in sorted(artifact.manifest.files.items()):
        # A directory on the way may be a symlink too (O_NOFOLLOW only guards
        # the last component).
        if _unsafe(rel) or not (root / rel).parent.resolve().is_relative_to(real_root):
            problems[rel] = "is not a path inside the artifact"
            continue
        try:
            data = _read_file(root, rel)
        except FileNotFoundError:
            problems[rel] = "is missing"
            continue
        except OSError as exc:
            symlink = exc.errno == errno.ELOOP
            problems[rel] = "is a symlink" if symlink else f"cannot be read ({exc.strerror})"
            continue
        if len(data) != entry.size:
            problems[rel] = f"has {len(data)} bytes, the manifest says {entry.size}"
        elif blake3.blake3(data).hexdigest() != entry.digest:
            problems[rel] = "does not match its digest"
        else:
            contents[rel] = data
    return contents, problems


def find_problems(artifact: Artifact) -> dict[str, str]:
    """Every file of ``artifact`` that does not match its manifest, with why."""
    return read_checked(artifact)[1]


def read_verified(artifact: Artifact) -> dict[str, bytes]:
    """The bytes of every file of ``artifact``, each read once and verified.

    Raises:
        CorruptArtifactError: If any file is missing or differs from the manifest.
    """
    contents, problems = read_checked(artifact)
    if problems:
        raise corruption(artifact, problems)
    return contents


def corruption(artifact: Artifact, problems: dict[str, str]) -> CorruptArtifactError:
    """The error that names what is wrong with ``artifact`` (the first few files)."""
    listed = "; ".join(f"{rel} {why}" for rel, why in list(problems.items())[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return CorruptArtifactError(
        f"artifact {artifact.key} at {artifact.path} is corrupt: {listed}{more}"
    )


def verify_artifact(artifact: Artifact) -> None:
    """Re-hash every file of ``artifact``.

    Raises:
        CorruptArtifactError: If any file is missing or differs from the manifest.
    """
    read_verified(artifact)


def verify_once(artifact: Artifact) -> bool:
    """:func:`verify_artifact`, once per artifact in this process.

    Returns:
        Whether it hashed (False: this process had already verified it).

    Raises:
        CorruptArtifactError: If the artifact is corrupt.
    """
    try:
        ident = (
            str(artifact.path),
            artifact.path.stat().st_ino,
            artifact.manifest_path.stat().st_mtime_ns,
        )
    except OSError as exc:
        raise CorruptArtifactError(f"artifact {artifact.key} vanished: {exc}") from exc
    if ident in _verified:
        return False
    verify_artifact(artifact)
    _verified.add(ident)
    return True


def _same_artifact(cache: Cache, key: str, expected: Manifest | None) -> bool:
    """Whether ``artifacts/<key>`` is still the one found corrupt (not a rebuild)."""
    try:
        current = cache.read_manifest(key)
    except CorruptArtifactError:
        return True  # its manifest is broken: corrupt whoever made it
    if current is None:
        return cache.artifact_dir(key).exists()  # a directory without manifest: junk
    return expected is None or current.created == expected.created


def _drop_bad_blobs(cache: Cache, moved: Path, manifest: Manifest | None, bad: list[str]) -> None:
    if manifest is None:
        return
    for rel in bad:
        entry = manifest.files.get(rel)
        if entry is None:
            continue
        blob = cache.blob_path(entry.digest)
        try:
            if os.path.samefile(blob, moved / rel):
                blob.unlink()
        except OSError:
            continue


def quarantine(
    cache: Cache,
    key: str,
    *,
    reason: str,
    manifest: Manifest | None = None,
    bad_files: list[str] | None = None,
    lock_timeout: float = _LOCK_TIMEOUT,
) -> Path | None:
    """Move the artifact of ``key`` out of ``artifacts/`` because it is corrupt.

    Args:
        cache: The cache.
        key: The key whose artifact is corrupt.
        reason: Why (stored beside it).
        manifest: The manifest of the artifact found corrupt; if the key's
            artifact has been replaced since (another process quarantined and
            rebuilt it), nothing is moved.
        bad_files: The files that did not match (their blobs are dropped too).
        lock_timeout: Seconds to wait for the key's lock.

    Returns:
        Where it went, or None if there was nothing (left) to move.
    """
    with key_lock(cache, key, lock_timeout) as held:
        if not held or not _same_artifact(cache, key, manifest):
            return None
        target = cache.quarantine_path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(cache.artifact_dir(key), target)
        except FileNotFoundError:
            return None
        fsync_dir(target.parent)
        fsync_dir(cache.artifacts_dir)
    _drop_bad_blobs(cache, target, manifest, bad_files or [])
    try:
        note = {"key": key, "time": time.time(), "reason": reason, "pid": os.getpid()}
        write_atomic(cache.quarantine_note(target), json.dumps(note).encode(), durable=False)
    except OSError:
        pass
    return target
