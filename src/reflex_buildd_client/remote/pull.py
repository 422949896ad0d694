"""Download an artifact from the remote tier into the local cache, verified.

A local miss looks here before building or waiting (:func:`remote_lookup`
is the hook :func:`.wait.obtain` calls). One pull per machine and key: the
puller holds the key's lock, so the other workers of a host wait for its
result instead of downloading the same bytes again.

The namespaces this machine reads (``REFLEX_BUILDD_READ_NAMESPACES``) are
asked in order; the first one with an accepted manifest is pulled from (its
own blobs). A refused manifest is logged (one line naming the signer seen and
the keys trusted) and, when no namespace has an accepted one, the pull fails
with it.

Trust nothing from the bucket: the manifest is read within the manifest
limits and checked first (:func:`.envelope.open_envelope`: size, depth,
shape, signature, key, inputs, paths), then every file streams into a scratch
directory in the cache's ``tmp/``, hashed and counted as it arrives and
refused one byte past its manifest size (:meth:`.bucket.RemoteStore.download`):
whatever the bucket holds, a pull holds about one chunk per worker in memory
and downloads at most the sizes the manifest lists. Only then is the artifact
installed like a build (:func:`.blobs.install_artifact`: blob store, manifest
last, fsync, rename), so leases, gc and verify work on it unchanged. A refused
artifact leaves nothing behind but a log line and the error; a local disk that
cannot take it is a :class:`~.errors.CacheIOError` naming the path (exit 5),
a file name it cannot hold is a refused artifact (exit 4).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import BinaryIO

import blake3

from ..cache.blobs import install_artifact
from ..cache.locks import key_lock
from ..cache.manifest import MAX_MANIFEST_BYTES, FileEntry, Manifest
from ..cache.status import append_journal
from ..cache.store import Artifact, Cache
from ..errors import (
    CacheIOError,
    ReflexBuilddError,
    RemoteUnavailableError,
    UntrustedArtifactError,
)
from .bucket import CHUNK_BYTES, RemoteSettings, RemoteStore, blob_object, manifest_object
from .envelope import open_envelope

__all__ = ["fetch_manifest", "pull", "remote_lookup"]

logger = logging.getLogger("reflex_buildd")

_WORKERS = 8
# After a pull gives up: how long its workers get to notice before the scratch goes.
_DRAIN_SECONDS = 2.0
# Errors of a fresh directory of our own that only the names written into it cause.
_NAME_FAULTS = frozenset(
    {errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.EILSEQ, errno.EINVAL}
)


def _scratch(cache: Cache, key: str) -> Path:
    # A scratch name gc knows: it removes the directory once its owner is dead.
    return cache.scratch_path("pull", key)


def fetch_manifest(store: RemoteStore, key: str) -> Manifest | None:
    """The checked remote manifest of ``key`` in the store's namespace, or None if it has none.

    At most :data:`~.manifest.MAX_MANIFEST_BYTES` (and one) are downloaded,
    then parsed within the manifest limits (:func:`.envelope.open_envelope`).

    Raises:
        UntrustedArtifactError: If the manifest is refused.
        RemoteUnavailableError: On a network fault.
    """
    data = store.get(manifest_object(key), max_bytes=MAX_MANIFEST_BYTES)
    if data is None:
        return None
    return open_envelope(data, key, store.settings.trust, store.namespace).manifest


def find_manifest(
    settings: RemoteSettings, key: str, deadline: float
) -> tuple[RemoteStore, Manifest] | None:
    """The first namespace this machine reads that has an accepted manifest of ``key``.

    Returns:
        The store of that namespace and the manifest, or None if no namespace has one.

    Raises:
        UntrustedArtifactError: Some namespace had a manifest, none was accepted
            (the first refusal; each one is also logged).
        RemoteUnavailableError: On a network fault.
    """
    refused: list[UntrustedArtifactError] = []
    for namespace in settings.read_namespaces:
        store = RemoteStore(
            settings, timeout=max(0.1, deadline - time.monotonic()), namespace=namespace
        )
        try:
            manifest = fetch_manifest(store, key)
        except UntrustedArtifactError as exc:
            logger.error("reflex-buildd: %s", exc)
            refused.append(exc)
            continue
        if manifest is not None:
            return store, manifest
    if refused:
        raise refused[0]
    return None


class _Stopped(Exception):
    """The pull gave up meanwhile: its scratch is being removed, stop writing into it."""


class _Sink:
    """Where one blob's bytes go as they arrive: a staged file, hashed and counted."""

    def __init__(self, stream: BinaryIO, stop: threading.Event) -> None:
        self.hasher = blake3.blake3()
        self.size = 0
        self._stream, self._stop = stream, stop

    def __call__(self, data: bytes) -> None:
        if self._stop.is_set():
            raise _Stopped
        self.hasher.update(data)
        self.size += len(data)
        self._stream.write(data)


def _copy_local(blob: Path, target: Path, entry: FileEntry, stop: threading.Event) -> bool:
    """Copy the local blob store's bytes of ``entry`` to ``target`` if they are right.

    False (download instead) if the blob is missing, unreadable, or not the
    bytes its name says; a failure to write ``target`` raises.
    """
    try:
        source = blob.open("rb")
        size = os.fstat(source.fileno()).st_size
    except OSError:
        return False
    with source:
        if size != entry.size:
            return False
        with target.open("wb") as out:
            sink = _Sink(out, stop)
            while chunk := _read_or_empty(source):
                sink(chunk)
    return sink.size == entry.size and sink.hasher.hexdigest() == entry.digest


def _read_or_empty(source: BinaryIO) -> bytes:
    # An unreadable blob reads as a short one: the size check then refuses it.
    try:
        return source.read(CHUNK_BYTES)
    except OSError:
        return b""


def _download_blob(
    store: RemoteStore, rel: str, entry: FileEntry, target: Path, stop: threading.Event
) -> int:
    """Stream the remote blob of ``entry`` into ``target``, refused past ``entry.size`` bytes."""
    with target.open("wb") as out:
        sink = _Sink(out, stop)
        received = store.download(blob_object(entry.digest), sink, max_bytes=entry.size)
    if received is None:
        raise RemoteUnavailableError(
            f"remote {store.location}: blob {entry.digest} of {rel} is missing "
            "(expired by a lifecycle rule, or removed)"
        )
    if received > entry.size:
        raise UntrustedArtifactError(
            f"remote blob of {rel} ({entry.digest[:16]}…) does not match the manifest's "
            f"size: longer than the {entry.size} bytes it says (refused after "
            f"{sink.size} bytes)",
            reason="bad-digest",
        )
    if received != entry.size or sink.hasher.hexdigest() != entry.digest:
        raise UntrustedArtifactError(
            f"remote blob of {rel} ({entry.digest[:16]}…) does not match the manifest's "
            f"digest ({received} bytes, the manifest says {entry.size}): refused",
            reason="bad-digest",
        )
    return received


def _fetch_one(
    cache: Cache,
    store: RemoteStore,
    staging: Path,
    rels: list[str],
    entry: FileEntry,
    stop: threading.Event,
) -> int:
    """Put the files ``rels`` (one content) into ``staging``: from the local blob store
    if it has the bytes, else downloaded once. Returns the bytes downloaded.

    Bytes stream from the blob (local or remote) to the staged file in
    chunks, so memory never holds a whole file.
    """
    target = staging / rels[0]
    try:
        _make_parents(staging, rels[0])
        received = 0
        if not _copy_local(cache.blob_path(entry.digest), target, entry, stop):
            received = _download_blob(store, rels[0], entry, target, stop)
        for rel in rels[1:]:  # install_artifact links them all to one blob
            if stop.is_set():
                return 0
            _make_parents(staging, rel)
            shutil.copyfile(target, staging / rel)
    except _Stopped:
        return 0
    except OSError as exc:
        if isinstance(exc, ReflexBuilddError):
            raise
        raise _staging_fault(exc, store.location, staging, rels[0]) from exc
    return received


def _make_parents(staging: Path, rel: str) -> None:
    """The directories of ``rel`` below ``staging``, never ``staging`` itself: a scratch
    directory removed by a pull that gave up stays removed."""
    path = staging
    for part in rel.split("/")[:-1]:
        path = path / part
        with contextlib.suppress(FileExistsError):
            path.mkdir()


def _staging_fault(exc: OSError, url: str, staging: Path, rel: str) -> ReflexBuilddError:
    """What an ``OSError`` while writing ``rel`` into a fresh scratch directory means.

    The scratch is new and ours, so a name this filesystem refuses (too
    long, not a directory, not encodable) comes from the manifest: the
    artifact is refused. Anything else (no space, quota, I/O, read-only) is
    the local cache's fault, with the path it happened at.
    """
    if exc.errno in _NAME_FAULTS:
        return UntrustedArtifactError(
            f"remote artifact of {url} names a file this filesystem cannot hold: "
            f"{rel[:120]!r} ({exc.strerror}): refused",
            reason="unsafe-path",
        )
    return CacheIOError.wrap(exc, staging / rel)


def _download(
    cache: Cache, store: RemoteStore, manifest: Manifest, staging: Path, deadline: float
) -> int:
    by_digest: dict[str, list[str]] = {}
    for rel, entry in sorted(manifest.files.items()):
        by_digest.setdefault(entry.digest, []).append(rel)
    stop = threading.Event()
    pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="reflex-buildd-pull")
    futures: list[Future[int]] = []
    try:
        futures += [
            pool.submit(_fetch_one, cache, store, staging, rels, manifest.files[rels[0]], stop)
            for rels in by_digest.values()
        ]
        done, pending = wait(
            futures, timeout=max(0.0, deadline - time.monotonic()), return_when=FIRST_EXCEPTION
        )
        for future in done:
            if (exc := future.exception()) is not None:
                raise exc
        if pending:
            raise RemoteUnavailableError(
                f"remote {store.location}: download of {manifest.key} did not finish "
                f"in time ({len(pending)} of {len(futures)} blobs left)"
            )
        return sum(f.result() for f in futures)
    finally:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        # Let the workers see the stop before the caller removes their scratch
        # (each checks it per chunk); one stuck in the network does not hold us.
        wait(futures, timeout=_DRAIN_SECONDS)


def _stage_and_install(
    cache: Cache, store: RemoteStore, manifest: Manifest, staging: Path, deadline: float
) -> int:
    """Download ``manifest``'s files into ``staging``, install it; return the bytes received.

    Raises:
        CacheIOError: The local cache cannot hold it (no space, read-only,
            I/O), naming the path.
    """
    try:
        staging.mkdir(parents=True)
        received = _download(cache, store, manifest, staging, deadline)
        install_artifact(cache, staging, manifest)
    except OSError as exc:
        if isinstance(exc, ReflexBuilddError):
            raise
        raise CacheIOError.wrap(exc, staging) from exc
    return received


def pull(
    cache: Cache, settings: RemoteSettings, key: str, *, timeout: float | None = None
) -> Artifact | None:
    """Bring the artifact of ``key`` from the remote into the local cache.

    Args:
        cache: The local cache.
        settings: The remote.
        key: The key.
        timeout: Seconds in all (default ``settings.timeout``).

    Returns:
        The local artifact (already there, or installed by this call), or
        None if the remote has no manifest for ``key``.

    Raises:
        UntrustedArtifactError: The remote artifact is refused; nothing was installed.
        RemoteUnavailableError: A network fault or a missing blob; nothing was installed.
        CacheIOError: The local cache cannot take it (no space, read-only),
            naming the path; nothing was installed.
    """
    budget = settings.timeout if timeout is None else min(timeout, settings.timeout)
    deadline = time.monotonic() + budget
    cache.ensure()
    with key_lock(cache, key, budget) as held:
        if (artifact := cache.open(key)) is not None:
            return artifact  # another worker of this machine pulled or built it
        if not held:
            raise RemoteUnavailableError(
                f"the lock of {key} stayed busy for {budget:.0f}s (a local build?)"
            )
        started = time.monotonic()
        found = find_manifest(settings, key, deadline)
        if found is None:
            append_journal(cache, "remote-miss", key, remote=settings.url)
            return None
        store, manifest = found
        staging = _scratch(cache, key)
        try:
            received = _stage_and_install(cache, store, manifest, staging, deadline)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):  # statistics only: the artifact is installed
            append_journal(
                cache,
                "pulled",
                key,
                remote=settings.url,
                namespace=store.namespace,
                bytes=received,
                seconds=round(time.monotonic() - started, 3),
            )
        return cache.open(key)


def remote_lookup(cache: Cache, key: str, settings: RemoteSettings | None) -> _Lookup | None:
    """The hook :func:`.wait.obtain` calls on a local miss, or None without a remote."""
    return None if settings is None else _Lookup(cache, key, settings)


class _Lookup:
    """Look in the remote once; a network fault is one log line and a miss."""

    def __init__(self, cache: Cache, key: str, settings: RemoteSettings) -> None:
        self._cache, self._key, self._settings = cache, key, settings

    def __call__(self, remaining: float | None) -> Artifact | None:
        """Pull within ``remaining`` seconds of the caller's own timeout (None: no limit).

        Raises:
            UntrustedArtifactError: The remote artifact is refused (never used,
                never installed).
        """
        try:
            return pull(self._cache, self._settings, self._key, timeout=remaining)
        except UntrustedArtifactError as exc:  # a PermissionError: before the OSError below
            self._journal("remote-refused", reason=exc.reason)
            raise
        except RemoteUnavailableError as exc:
            self._journal("remote-error")
            logger.warning(
                "reflex-buildd: remote cache unavailable, using the local tier only: %s", exc
            )
        except OSError as exc:  # the local cache cannot take it (read-only, full)
            logger.warning(
                "reflex-buildd: cannot install from the remote cache into %s (%s), "
                "using the local tier only",
                self._cache.root,
                exc,
            )
        return None

    def _journal(self, event: str, **fields: str) -> None:
        with contextlib.suppress(OSError):  # a read-only cache has no journal to write
            append_journal(self._cache, event, self._key, remote=self._settings.url, **fields)
