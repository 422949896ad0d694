"""Publish a finished build into the cache, atomically.

The pip-cache discipline: everything is written inside a unique directory in
the cache's own ``tmp/`` (same filesystem), the manifest last, every file and
directory fsynced, then one ``rename`` makes it visible. A reader sees either
no ``<key>/`` or a complete one; a crash at any instant leaves only a temp
directory behind.

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

import mimetypes
import os
import shutil
import stat
import time
from pathlib import Path
from typing import Any

import blake3

from reflex_buildd_client.keys import KeyInputs
from reflex_buildd_client.manifest import FileEntry, Manifest
from reflex_buildd_client.rewrite import SENTINEL_BYTES
from reflex_buildd_client.store import Cache, fsync_dir, stage_manifest

__all__ = ["content_type_of", "dedup_files", "describe_files", "publish"]

# mimetypes misses or varies on these across platforms; pin what browsers need.
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    ".xml": "application/xml",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".woff2": "font/woff2",
    ".gz": "application/gzip",
    ".br": "application/x-brotli",
}


def content_type_of(path: str) -> str:
    """The Content-Type to serve a file with."""
    suffix = Path(path).suffix.lower()
    if suffix in _TYPES:
        return _TYPES[suffix]
    guessed, _ = mimetypes.guess_type(path)
    return guessed or "application/octet-stream"


def describe_files(root: Path) -> dict[str, FileEntry]:
    """Digest, size, type and sentinel count of every file under ``root``."""
    entries: dict[str, FileEntry] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        rel = path.relative_to(root).as_posix()
        entries[rel] = FileEntry(
            digest=blake3.blake3(data).hexdigest(),
            size=len(data),
            content_type=content_type_of(rel),
            sentinels=data.count(SENTINEL_BYTES),
        )
    return entries


_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


def _blob_ok(blob: Path, entry: FileEntry) -> bool:
    """Whether an existing blob holds exactly the bytes its name says."""
    try:
        data = blob.read_bytes()
    except OSError:
        return False
    return len(data) == entry.size and blake3.blake3(data).hexdigest() == entry.digest


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
        if not _blob_ok(blob, entry):
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


def publish(
    cache: Cache,
    staging: Path,
    *,
    key: str,
    inputs: KeyInputs,
    project: dict[str, str],
    build: dict[str, Any],
    routes: list[str],
) -> Path:
    """Write the manifest into ``staging`` and move it to its place under ``key``.

    ``staging`` must be a directory under ``cache.tmp_dir()``. If the key is
    already published (another builder won), ``staging`` is discarded and the
    existing artifact kept: artifacts of one key are interchangeable.

    Returns:
        The artifact directory.
    """
    files = describe_files(staging)
    manifest = Manifest(
        key=key,
        created=time.time(),
        project=project,
        inputs=inputs,
        build=build,
        files=files,
        routes=routes,
    )
    dedup_files(cache, staging, files)
    # The rename below is what publishes, after everything is on disk.
    stage_manifest(staging, manifest)
    _fsync_tree(staging)
    target = cache.artifact_dir(key)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(staging, target)
    except OSError:
        if cache.has_manifest(key):
            shutil.rmtree(staging, ignore_errors=True)
            return target
        raise
    fsync_dir(target.parent)
    return target
