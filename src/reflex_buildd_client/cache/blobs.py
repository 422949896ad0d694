"""Install a staged artifact into the cache: share its files through the blob store, rename.

The one way an artifact becomes visible, whether a build made it
(``reflex_buildd.publish``) or it was downloaded from the remote tier
(:mod:`reflex_buildd_client.remote.bucket`). The pip-cache discipline: everything sits in a unique
directory under the cache's own ``tmp/`` (same filesystem), the manifest is
written last, every file and directory is fsynced, then one ``rename`` makes
it visible. A reader sees either no ``<key>/`` or a complete one; a crash at
any instant leaves only a temp directory behind.

Each file is stored once: before the rename, every staged file becomes a hard
link to ``blobs/<digest[:2]>/<digest>`` (an existing blob, re-hashed first so
that bad bytes never spread, or the staged file itself as the new blob).
Successive builds of one project share their unchanged chunks, and a blob whose
link count drops to 1 is referenced by no artifact (gc removes it). Linked
files are made read-only: nobody may modify one in place, since every artifact
holding those bytes would change with it. Where hard links are impossible
(another filesystem, no support), files simply stay unshared.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import blake3

from .atomic import fsync_dir
from .manifest import FileEntry, Manifest
from .store import Cache, stage_manifest

__all__ = ["blob_ok", "dedup_files", "install_artifact"]

_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
_CHUNK = 1024 * 1024


def blob_ok(blob: Path, entry: FileEntry) -> bool:
    """Whether an existing blob holds exactly the bytes its name says.

    The size is compared before a byte is read, and the bytes are hashed in
    chunks: a blob of the wrong size costs a ``stat``, never its size in memory.
    """
    try:
        with blob.open("rb") as stream:
            if os.fstat(stream.fileno()).st_size != entry.size:
                return False
            hasher = blake3.blake3()
            while chunk := stream.read(_CHUNK):
                hasher.update(chunk)
    except OSError:
        return False
    return hasher.hexdigest() == entry.digest


def _link_one(blob: Path, staged: Path, entry: FileEntry) -> bool:
    """Make ``staged`` share its inode with ``blob``; return whether it does."""
    blob.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(staged, _READ_ONLY)
    for _attempt in range(3):
        try:
            # The staged file becomes the blob: one atomic link, never a partial blob.
            os.link(staged, blob)
            return True
        except FileExistsError:
            pass
        if not blob_ok(blob, entry):
            # Bad bytes under a good name (bit rot, a hand edit): take it out
            # of the store; our fresh copy replaces it on the next attempt.
            blob.unlink(missing_ok=True)
            continue
        tmp = staged.with_name(f".{staged.name}.link")
        try:
            os.link(blob, tmp)
        except FileNotFoundError:
            continue  # gc removed it (link count 1) just now: become the blob
        os.replace(tmp, staged)
        return True
    return False


def dedup_files(cache: Cache, staging: Path, files: dict[str, FileEntry]) -> int:
    """Hard-link every staged file to its blob; return the bytes shared with earlier artifacts."""
    shared = 0
    for rel, entry in files.items():
        staged = staging / rel
        blob = cache.blob_path(entry.digest)
        try:
            before = os.stat(blob).st_ino if blob.exists() else None
            if _link_one(blob, staged, entry) and before is not None:
                shared += entry.size if os.stat(staged).st_ino == before else 0
        except OSError:
            # No hard links here (EXDEV, EPERM, EMLINK): this file stays unshared.
            continue
    return shared


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def install_artifact(cache: Cache, staging: Path, manifest: Manifest) -> Path:
    """Write ``manifest`` into ``staging`` (last) and rename it to its place under its key.

    ``staging`` must be a directory under ``cache.tmp_dir()`` holding exactly
    the files of ``manifest``. If the key is already there (another builder
    or puller won), ``staging`` is discarded and the existing artifact kept:
    artifacts of one key are interchangeable.

    Returns:
        The artifact directory.
    """
    dedup_files(cache, staging, manifest.files)
    # The rename below is what publishes, after everything is on disk.
    stage_manifest(staging, manifest)
    _fsync_tree(staging)
    target = cache.artifact_dir(manifest.key)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(staging, target)
    except OSError:
        if cache.has_manifest(manifest.key):
            shutil.rmtree(staging, ignore_errors=True)
            return target
        raise
    fsync_dir(target.parent)
    return target
