"""Publish a finished build into the cache, atomically.

The manifest is computed here (every file's digest, size, content type and
sentinel count); :func:`reflex_buildd_client.cache.blobs.install_artifact` then
shares the files through the blob store, writes the manifest last, fsyncs and
renames: the one install path, also used by downloads from the remote tier.
"""

from __future__ import annotations

import mimetypes
import time
from pathlib import Path
from typing import Any

import blake3

from reflex_buildd_client.cache.blobs import dedup_files, install_artifact
from reflex_buildd_client.cache.manifest import FileEntry, Manifest
from reflex_buildd_client.cache.store import Artifact, Cache
from reflex_buildd_client.keys.schema import KeyInputs
from reflex_buildd_client.serve.rewrite import SENTINEL_BYTES

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


def publish(
    cache: Cache,
    staging: Path,
    *,
    key: str,
    inputs: KeyInputs,
    project: dict[str, str],
    build: dict[str, Any],
    routes: list[str],
) -> Artifact:
    """Write the manifest into ``staging`` and move it to its place under ``key``.

    ``staging`` must be a directory under ``cache.tmp_dir()``. If the key is
    already published (another builder won), ``staging`` is discarded and the
    existing artifact kept: artifacts of one key are interchangeable.

    Returns:
        The published artifact (with the manifest written here, which names
        the same files as any other builder's of this key).
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
    return Artifact(install_artifact(cache, staging, manifest), manifest)
