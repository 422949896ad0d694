"""The shared cache directory: the one owner of its layout, manifests, opening artifacts.

Layout (versioned so a future layout never reads this one by mistake)::

    <root>/v1/artifacts/<key>/      complete artifacts; manifest.json written last
    <root>/v1/locks/<key>.lock      per-key build locks (filelock)
    <root>/v1/logs/<key>.log        build logs
    <root>/v1/tmp/                  build and publish scratch, same filesystem
    <root>/v1/work/<project-id>/    warm build workspaces: web/ (.web, node_modules), workspace.json
    <root>/v1/work/<project-id>.lock        held by the one build in that workspace
    <root>/v1/statcache/<project-id>.json   digests by stat identity (fast re-keying)
    <root>/v1/status/<key>.json     build status records (building / failed)
    <root>/v1/daemons/<project-id>.json     what each project's daemon is on
    <root>/v1/journal.jsonl         one line per build start / publish / failure / eviction
    <root>/v1/blobs/<d[:2]>/<digest>        each file's bytes once; artifacts hard-link here
    <root>/v1/leases/<key>/<host>-<pid>-<rand>.json   live hosts serving <key> (lease.py)
    <root>/v1/used/<key>            mtime: when <key> was last leased (gc's LRU order)
    <root>/v1/quarantine/<key>-<time>-<pid>/  corrupt artifacts moved aside (verify.py)
    <root>/v1/dev/<project-id>/     ``reflex-buildd dev``: its .web, reflex.lock, routes file, lock

An artifact holds ``public/`` (the static frontend), ``web/backend/`` (the
markers the Reflex backend reads from ``.web``) and ``manifest.json``. A
directory without a readable manifest is not an artifact. Artifact files are
hard links shared with other artifacts (publish.py): read them, never write
them. :meth:`Cache.open` checks sizes only; the full re-hash against the
manifest is :mod:`.verify` (hosts run it once per artifact, through
:mod:`reflex_buildd_client.startup.checkout`). Every durable write goes through
:mod:`.atomic`; locks are :mod:`.locks`.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CacheIOError, CorruptArtifactError
from .manifest import MAX_MANIFEST_BYTES, Manifest

__all__ = [
    "BACKEND_MARKERS_DIR",
    "MANIFEST_NAME",
    "PUBLIC_DIR",
    "SCRATCH_KINDS",
    "WEB_DIR",
    "Artifact",
    "Cache",
    "host_tag",
    "read_manifest_file",
    "scratch_name",
    "stage_manifest",
]

LAYOUT = "v1"
MANIFEST_NAME = "manifest.json"
# Inside an artifact (and a staging directory that becomes one): the static frontend, and
# what the Reflex backend reads as its ``.web`` (its markers live in ``web/backend/``).
PUBLIC_DIR = "public"
WEB_DIR = "web"
BACKEND_MARKERS_DIR = "web/backend"
# Scratch directory kinds in tmp/ (scratch.py says whose one is): builds, artifacts being
# evicted by gc, downloads from the remote tier.
SCRATCH_KINDS = ("build", "gc", "pull")


@dataclass(frozen=True)
class Artifact:
    """A complete artifact in the cache.

    Attributes:
        path: Its directory.
        manifest: Its manifest.
        stamp: The manifest file's (inode, mtime) when it was read, if read from this cache:
            :meth:`Cache.still_published` tells by a stat whether it is still the one there.
    """

    path: Path
    manifest: Manifest
    stamp: tuple[int, int] | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        """The key the artifact is stored under."""
        return self.manifest.key

    @property
    def public_dir(self) -> Path:
        """Root of the static frontend files."""
        return self.path / PUBLIC_DIR

    @property
    def web_dir(self) -> Path:
        """What the Reflex backend should see as its ``.web`` directory."""
        return self.path / WEB_DIR

    @staticmethod
    def staged_public_dir(staging: Path) -> Path:
        """``public/`` of an artifact being assembled in ``staging``."""
        return staging / PUBLIC_DIR

    @staticmethod
    def staged_backend_dir(staging: Path) -> Path:
        """``web/backend/`` (the backend's markers) of an artifact being assembled."""
        return staging / BACKEND_MARKERS_DIR

    @property
    def manifest_path(self) -> Path:
        """The artifact's manifest."""
        return self.path / MANIFEST_NAME


class Cache:
    """One cache root: the only code that knows where anything lives in it.

    Every path of the layout above is a method here, so that statistics,
    gc, verification, leases and the builder all ask the same place (and a
    remote tier can plug in behind the same face). Nothing else joins paths
    under the root.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        # Absolute: builds run with another cwd, and records name paths in it. Which root
        # (an option, REFLEX_BUILDD_CACHE_DIR, the per-user default) is the settings' call.
        self.root = Path(root).expanduser().absolute()
        self.base = self.root / LAYOUT

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cache) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    def __repr__(self) -> str:
        return f"Cache({str(self.root)!r})"

    # -- artifacts ----------------------------------------------------------

    @property
    def artifacts_dir(self) -> Path:
        """The directory of all published artifacts."""
        return self.base / "artifacts"

    def artifact_dir(self, key: str) -> Path:
        """Where the artifact for ``key`` lives once published."""
        return self.artifacts_dir / key

    def manifest_path(self, key: str) -> Path:
        """The manifest of ``key``'s artifact (its completion marker)."""
        return self.artifact_dir(key) / MANIFEST_NAME

    def has_manifest(self, key: str) -> bool:
        """Whether ``key`` is published (the manifest is written last)."""
        return self.manifest_path(key).is_file()

    def keys(self) -> list[str]:
        """Every key with a directory under ``artifacts/`` (complete or not), sorted."""
        try:
            return sorted(p.name for p in self.artifacts_dir.iterdir() if p.is_dir())
        except FileNotFoundError:
            return []

    @property
    def blobs_dir(self) -> Path:
        """The content-addressed blob store (each file's bytes once)."""
        return self.base / "blobs"

    def blob_path(self, digest: str) -> Path:
        """Where the blob store keeps the one copy of the bytes with ``digest``."""
        return self.blobs_dir / digest[:2] / digest

    def blob_paths(self) -> Iterator[Path]:
        """Every blob in the store."""
        for shard in self.blobs_dir.glob("??"):
            with contextlib.suppress(FileNotFoundError):
                yield from shard.iterdir()

    @property
    def quarantine_dir(self) -> Path:
        """Where corrupt artifacts are moved aside."""
        return self.base / "quarantine"

    def quarantine_path(self, key: str) -> Path:
        """A fresh place in the quarantine for the artifact of ``key``."""
        return self.quarantine_dir / f"{key}-{int(time.time())}-{os.getpid()}"

    @staticmethod
    def quarantine_note(moved: Path) -> Path:
        """Why the artifact moved to ``moved`` was quarantined."""
        return moved / "QUARANTINE.json"

    def quarantined(self) -> list[Path]:
        """Every quarantined artifact, sorted."""
        return sorted(self.quarantine_dir.glob("*"))

    # -- build coordination -------------------------------------------------

    @property
    def locks_dir(self) -> Path:
        """Per-key build locks and the gc lock."""
        return self.base / "locks"

    def lock_path(self, key: str) -> Path:
        """The build lock of ``key``."""
        return self.locks_dir / f"{key}.lock"

    @property
    def gc_lock_path(self) -> Path:
        """The lock that makes one gc run at a time."""
        return self.locks_dir / "gc.lock"

    @property
    def logs_dir(self) -> Path:
        """Build logs."""
        return self.base / "logs"

    def log_path(self, key: str) -> Path:
        """The log of the latest build of ``key``."""
        return self.logs_dir / f"{key}.log"

    @property
    def status_dir(self) -> Path:
        """Build status records (building / failed)."""
        return self.base / "status"

    def status_path(self, key: str) -> Path:
        """The status record of ``key``."""
        return self.status_dir / f"{key}.json"

    @property
    def journal_path(self) -> Path:
        """The append-only journal of build events."""
        return self.base / "journal.jsonl"

    @property
    def daemons_dir(self) -> Path:
        """Daemon records and their one-per-project locks."""
        return self.base / "daemons"

    def daemon_record_path(self, project: str) -> Path:
        """What the daemon of project id ``project`` is on."""
        return self.daemons_dir / f"{project}.json"

    def daemon_lock_path(self, project: str) -> Path:
        """The lock that keeps one daemon per project."""
        return self.daemons_dir / f"{project}.lock"

    def daemon_record_paths(self) -> list[Path]:
        """Every daemon record, sorted."""
        return sorted(self.daemons_dir.glob("*.json"))

    def status_record_paths(self) -> list[Path]:
        """Every status record, sorted."""
        return sorted(self.status_dir.glob("*.json"))

    # -- per project --------------------------------------------------------

    @property
    def statcache_dir(self) -> Path:
        """Stat caches of projects, and indexes of installed distributions."""
        return self.base / "statcache"

    def statcache_path(self, project: str) -> Path:
        """File digests by stat identity of project id ``project``."""
        return self.statcache_dir / f"{project}.json"

    def site_index_path(self, site: str) -> Path:
        """The installed distributions of one site state (a digest of ``sys.path``)."""
        return self.statcache_dir / f"site-{site}.json"

    @property
    def work_root(self) -> Path:
        """All warm build workspaces."""
        return self.base / "work"

    def work_dir(self, project: str) -> Path:
        """The warm build workspace of project id ``project``."""
        return self.work_root / project

    def work_lock(self, project: str) -> Path:
        """The lock held by the one build running in the workspace of ``project``."""
        return self.work_root / f"{project}.lock"

    def work_web_dir(self, project: str) -> Path:
        """The ``.web`` of ``project``'s builds (``REFLEX_WEB_WORKDIR``)."""
        return self.work_dir(project) / "web"

    def work_record_path(self, project: str) -> Path:
        """Who builds in ``project``'s workspace, and which ``node_modules`` it trusts."""
        return self.work_dir(project) / "workspace.json"

    def tmp_dir(self) -> Path:
        """Scratch space on the cache's filesystem (for atomic renames)."""
        return self.base / "tmp"

    def scratch_path(self, kind: str, key: str) -> Path:
        """A fresh scratch directory of this process for ``kind`` of work on ``key`` (not made)."""
        return self.tmp_dir() / scratch_name(kind, key)

    # -- hosts ----------------------------------------------------------------

    @property
    def leases_root(self) -> Path:
        """Leases of live hosts, one directory per key."""
        return self.base / "leases"

    def leases_dir(self, key: str) -> Path:
        """The leases of ``key``."""
        return self.leases_root / key

    def new_lease_paths(self, key: str, host: str, pid: int) -> tuple[Path, Path]:
        """A fresh lease file of this process for ``key``, and the temp name it is written as."""
        name = f"{host}-{pid}-{uuid.uuid4().hex[:8]}.json"
        directory = self.leases_dir(key)
        return directory / name, directory / f".{name}.tmp"

    def lease_paths(self, key: str) -> list[Path]:
        """The lease files of ``key``, sorted (temp files being written excluded)."""
        try:
            return sorted(p for p in self.leases_dir(key).iterdir() if p.suffix == ".json")
        except FileNotFoundError:
            return []

    def used_path(self, key: str) -> Path:
        """Its mtime says when ``key`` was last leased (gc's LRU order)."""
        return self.base / "used" / key

    # -- dev sessions (reflex-buildd dev) --------------------------------------

    def dev_dir(self, project: str) -> Path:
        """The workspace of ``reflex-buildd dev`` for project id ``project`` (never an artifact)."""
        return self.base / "dev" / project

    def dev_web_dir(self, project: str) -> Path:
        """The ``.web`` of a dev session (``REFLEX_WEB_WORKDIR``), prefix-specific."""
        return self.dev_dir(project) / "web"

    def dev_routes_path(self, project: str) -> Path:
        """Where a dev session's backend writes its route paths for the host's proxy."""
        return self.dev_dir(project) / "routes.json"

    def dev_lockfiles_dir(self, project: str) -> Path:
        """A dev session's ``reflex.lock/`` (Reflex writes it after installs; not into the project)."""
        return self.dev_dir(project) / "reflex.lock"

    def dev_lock_path(self, project: str) -> Path:
        """Held by the one dev session of a project."""
        return self.dev_dir(project) / "session.lock"

    # -- reading and writing --------------------------------------------------

    def ensure(self) -> None:
        """Create the directories of the layout.

        Raises:
            CacheIOError: If they cannot be made (a file in the way, permissions,
                no space, a read-only filesystem).
        """
        for path in (
            self.artifacts_dir,
            self.locks_dir,
            self.logs_dir,
            self.tmp_dir(),
            self.work_root,
        ):
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CacheIOError.wrap(exc, path) from exc

    def read_manifest(self, key: str) -> Manifest | None:
        """The manifest of ``key``, or None if there is none (not published).

        Raises:
            CorruptArtifactError: If a manifest is there but unreadable,
                malformed, or names another key.
        """
        return read_manifest_file(self.manifest_path(key), key)

    def published(self, key: str) -> Artifact | None:
        """The artifact of ``key`` as its manifest says (None: not published); no file is checked.

        Raises:
            CorruptArtifactError: If the manifest is unreadable, malformed, or names another key.
            CacheIOError: If it cannot be read (permissions, I/O).
        """
        path = self.manifest_path(key)
        try:
            # Before the read: a manifest replaced in between gets an older stamp, never a
            # newer one, so still_published reads it again rather than trust it wrongly.
            before = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise CacheIOError.wrap(exc, path) from exc
        manifest = read_manifest_file(path, key)
        if manifest is None:
            return None
        return Artifact(self.artifact_dir(key), manifest, (before.st_ino, before.st_mtime_ns))

    def still_published(self, artifact: Artifact) -> Artifact | None:
        """``artifact`` if its manifest file is still the one it was read from (one stat);
        else the artifact published under its key now, or None.

        Raises:
            CorruptArtifactError: If a manifest read again is malformed.
            CacheIOError: If it cannot be read.
        """
        key = artifact.key
        if artifact.stamp is not None and artifact.path == self.artifact_dir(key):
            try:
                now = self.manifest_path(key).stat()
            except OSError:
                now = None
            if now is not None and (now.st_ino, now.st_mtime_ns) == artifact.stamp:
                return artifact
        return self.published(key)

    def open(self, key: str) -> Artifact | None:
        """The complete artifact of ``key``, or None if the cache has none.

        Raises:
            CorruptArtifactError: If a manifest is there but the files do not
                match it (a missing file or a wrong size).
        """
        manifest = self.read_manifest(key)
        if manifest is None:
            return None
        path = self.artifact_dir(key)
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


def read_manifest_file(path: Path, key: str | None = None) -> Manifest | None:
    """Parse the manifest at ``path`` (None if there is no file).

    At most :data:`~.manifest.MAX_MANIFEST_BYTES` (and one more, to know
    it is too large) are read, and parsed within the manifest's limits.

    Raises:
        CorruptArtifactError: Too large, not JSON, malformed, or (with
            ``key``) naming another key.
        CacheIOError: If the file cannot be read (permissions, I/O).
    """
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_MANIFEST_BYTES + 1)
    except (FileNotFoundError, NotADirectoryError):
        return None  # nothing there (a file in the way of the path holds no manifest either)
    except IsADirectoryError as exc:
        raise CorruptArtifactError(f"unreadable manifest {path}: a directory") from exc
    except OSError as exc:
        # Permissions or I/O: the bytes may be fine, so this is no reason to
        # quarantine the artifact; the cache is what cannot be used.
        raise CacheIOError.wrap(exc, path) from exc
    try:
        manifest = Manifest.from_bytes(data)
    except CorruptArtifactError as exc:
        raise CorruptArtifactError(f"{exc} ({path})") from None
    if key is not None and manifest.key != key:
        raise CorruptArtifactError(f"{path.parent} holds the manifest of {manifest.key}")
    return manifest


def stage_manifest(directory: Path, manifest: Manifest) -> Path:
    """Write ``manifest`` into an artifact being assembled in ``directory`` (not yet visible).

    Nobody reads a staging directory, so a plain write is enough: the rename
    that publishes comes after everything in it is fsynced.
    """
    path = directory / MANIFEST_NAME
    path.write_text(json.dumps(manifest.to_json(), indent=1, sort_keys=True))
    return path


def host_tag(hostname: str | None = None) -> str:
    """Eight hex digits naming a machine (no dashes, unlike host names)."""
    import blake3

    name = socket.gethostname() if hostname is None else hostname
    return blake3.blake3(name.encode()).hexdigest()[:8]


def scratch_name(kind: str, key: str) -> str:
    """A fresh scratch directory name for this process: ``<kind>-<key12>-<pid>-<rand>-<host>``."""
    return f"{kind}-{key[:12]}-{os.getpid()}-{uuid.uuid4().hex[:8]}-{host_tag()}"
