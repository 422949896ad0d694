"""The shared cache directory: layout, manifests, opening artifacts.

Layout (versioned so a future layout never reads this one by mistake)::

    <root>/v1/artifacts/<key>/      complete artifacts; manifest.json written last
    <root>/v1/locks/<key>.lock      per-key build locks (filelock)
    <root>/v1/logs/<key>.log        build logs
    <root>/v1/tmp/                  build and publish scratch, same filesystem
    <root>/v1/work/<project-id>/    warm build workspaces (.web, node_modules)
    <root>/v1/statcache/<project-id>.json   digests by stat identity (fast re-keying)
    <root>/v1/status/<key>.json     build status records (building / failed)
    <root>/v1/daemons/<project-id>.json     what each project's daemon is on
    <root>/v1/journal.jsonl         one line per build start / publish / failure / eviction
    <root>/v1/blobs/<d[:2]>/<digest>        each file's bytes once; artifacts hard-link here
    <root>/v1/leases/<key>/<host>-<pid>-<rand>.json   live hosts serving <key> (lease.py)
    <root>/v1/used/<key>            mtime: when <key> was last leased (gc's LRU order)
    <root>/v1/quarantine/<key>-<time>-<pid>/  corrupt artifacts moved aside (verify.py)

An artifact holds ``public/`` (the static frontend), ``web/backend/`` (the
markers the Reflex backend reads from ``.web``) and ``manifest.json``. A
directory without a readable manifest is not an artifact. Artifact files are
hard links shared with other artifacts (publish.py): read them, never write
them. :meth:`Cache.open` checks sizes only; the full re-hash against the
manifest is :mod:`.verify` (hosts run it once per artifact, through
:mod:`.checkout`).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CorruptArtifactError
from .keys import KeyInputs

__all__ = [
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "Artifact",
    "Cache",
    "FileEntry",
    "Manifest",
    "default_cache_dir",
    "fsync_dir",
    "key_lock",
]

LAYOUT = "v1"
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1


def default_cache_dir() -> Path:
    """``REFLEX_BUILDD_CACHE_DIR``, else the per-user cache folder."""
    if value := os.environ.get("REFLEX_BUILDD_CACHE_DIR"):
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "reflex-buildd"


@dataclass(frozen=True)
class FileEntry:
    """One file of an artifact as the manifest records it."""

    digest: str
    size: int
    content_type: str
    sentinels: int = 0


@dataclass(frozen=True)
class Manifest:
    """What an artifact holds and how it was made (written last, read first)."""

    key: str
    created: float
    project: dict[str, str]
    inputs: KeyInputs
    build: dict[str, Any]
    files: dict[str, FileEntry]
    routes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The manifest as stored in ``manifest.json``."""
        return {
            "format": MANIFEST_FORMAT,
            "key": self.key,
            "created": self.created,
            "project": self.project,
            "inputs": self.inputs.to_json(),
            "build": self.build,
            "routes": self.routes,
            "files": {
                path: {
                    "digest": e.digest,
                    "size": e.size,
                    "type": e.content_type,
                    "sentinels": e.sentinels,
                }
                for path, e in sorted(self.files.items())
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        """Parse a stored manifest.

        Raises:
            CorruptArtifactError: If the data is not a manifest this version reads.
        """
        try:
            if data["format"] != MANIFEST_FORMAT:
                raise CorruptArtifactError(f"unknown manifest format {data['format']!r}")
            return cls(
                key=str(data["key"]),
                created=float(data["created"]),
                project=dict(data["project"]),
                inputs=KeyInputs.from_json(data["inputs"]),
                build=dict(data["build"]),
                routes=[str(r) for r in data.get("routes", [])],
                files={
                    str(path): FileEntry(
                        digest=str(e["digest"]),
                        size=int(e["size"]),
                        content_type=str(e["type"]),
                        sentinels=int(e.get("sentinels", 0)),
                    )
                    for path, e in data["files"].items()
                },
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, CorruptArtifactError):
                raise
            raise CorruptArtifactError(f"malformed manifest: {exc!r}") from exc


@dataclass(frozen=True)
class Artifact:
    """A complete artifact in the cache."""

    path: Path
    manifest: Manifest

    @property
    def key(self) -> str:
        """The key the artifact is stored under."""
        return self.manifest.key

    @property
    def public_dir(self) -> Path:
        """Root of the static frontend files."""
        return self.path / "public"

    @property
    def web_dir(self) -> Path:
        """What the Reflex backend should see as its ``.web`` directory."""
        return self.path / "web"


class Cache:
    """One cache root; all paths in it derive from here."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        # Absolute: builds run with another cwd, and records name paths in it.
        chosen = Path(root).expanduser() if root is not None else default_cache_dir()
        self.root = chosen.absolute()
        self.base = self.root / LAYOUT

    def artifact_dir(self, key: str) -> Path:
        """Where the artifact for ``key`` lives once published."""
        return self.base / "artifacts" / key

    def lock_path(self, key: str) -> Path:
        """The build lock of ``key``."""
        return self.base / "locks" / f"{key}.lock"

    def log_path(self, key: str) -> Path:
        """The log of the latest build of ``key``."""
        return self.base / "logs" / f"{key}.log"

    def tmp_dir(self) -> Path:
        """Scratch space on the cache's filesystem (for atomic renames)."""
        return self.base / "tmp"

    def work_dir(self, project_id: str) -> Path:
        """The warm build workspace of one project."""
        return self.base / "work" / project_id

    def ensure(self) -> None:
        """Create the directories of the layout."""
        for name in ("artifacts", "locks", "logs", "tmp", "work"):
            (self.base / name).mkdir(parents=True, exist_ok=True)

    def open(self, key: str) -> Artifact | None:
        """The complete artifact of ``key``, or None if the cache has none.

        Raises:
            CorruptArtifactError: If a manifest is there but the files do not
                match it (a missing file or a wrong size).
        """
        path = self.artifact_dir(key)
        try:
            data = json.loads((path / MANIFEST_NAME).read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise CorruptArtifactError(f"unreadable manifest in {path}: {exc}") from exc
        manifest = Manifest.from_json(data)
        if manifest.key != key:
            raise CorruptArtifactError(f"{path} holds the manifest of {manifest.key}")
        for rel, entry in manifest.files.items():
            try:
                size = (path / rel).stat().st_size
            except OSError:
                raise CorruptArtifactError(f"{path}: {rel} is missing") from None
            if size != entry.size:
                raise CorruptArtifactError(
                    f"{path}: {rel} has {size} bytes, the manifest says {entry.size}"
                )
        return Artifact(path=path, manifest=manifest)


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
