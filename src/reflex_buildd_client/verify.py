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

import json
import os
import time
from pathlib import Path

import blake3

from .errors import CorruptArtifactError
from .store import Artifact, Cache, Manifest, fsync_dir, key_lock, write_atomic

__all__ = [
    "find_problems",
    "quarantine",
    "verify_artifact",
    "verify_once",
]

_LOCK_TIMEOUT = 30.0
# Artifacts verified by this process: (directory, inode, manifest mtime).
_verified: set[tuple[str, int, int]] = set()


def find_problems(artifact: Artifact) -> dict[str, str]:
    """Every file of ``artifact`` that does not match its manifest, with why."""
    root = artifact.path
    problems: dict[str, str] = {}
    for rel, entry in sorted(artifact.manifest.files.items()):
        path = root / rel
        try:
            if path.is_symlink():
                problems[rel] = "is a symlink"
                continue
            data = path.read_bytes()
        except FileNotFoundError:
            problems[rel] = "is missing"
            continue
        except OSError as exc:
            problems[rel] = f"cannot be read ({exc.strerror})"
            continue
        if len(data) != entry.size:
            problems[rel] = f"has {len(data)} bytes, the manifest says {entry.size}"
        elif blake3.blake3(data).hexdigest() != entry.digest:
            problems[rel] = "does not match its digest"
    return problems


def verify_artifact(artifact: Artifact) -> None:
    """Re-hash every file of ``artifact``.

    Raises:
        CorruptArtifactError: If any file is missing or differs from the manifest.
    """
    problems = find_problems(artifact)
    if problems:
        listed = "; ".join(f"{rel} {why}" for rel, why in list(problems.items())[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise CorruptArtifactError(
            f"artifact {artifact.key} at {artifact.path} is corrupt: {listed}{more}"
        )


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
