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

Trust nothing from the bucket: the manifest is checked first
(:func:`.envelope.open_envelope`: signature, key, inputs, paths), then every
downloaded file against its blake3 digest and size, all inside a scratch
directory in the cache's ``tmp/``. Only then is the artifact installed like a
build (:func:`.blobs.install_artifact`: blob store, manifest last, fsync,
rename), so leases, gc and verify work on it unchanged. A refused artifact
leaves nothing behind but a log line and the error.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path

import blake3

from ..cache.blobs import blob_ok, install_artifact
from ..cache.locks import key_lock
from ..cache.manifest import FileEntry, Manifest
from ..cache.status import append_journal
from ..cache.store import Artifact, Cache
from ..errors import RemoteUnavailableError, UntrustedArtifactError
from .bucket import RemoteSettings, RemoteStore, blob_object, manifest_object
from .envelope import open_envelope

__all__ = ["fetch_manifest", "pull", "remote_lookup"]

logger = logging.getLogger("reflex_buildd")

_WORKERS = 8


def _scratch(cache: Cache, key: str) -> Path:
    # A scratch name gc knows: it removes the directory once its owner is dead.
    return cache.scratch_path("pull", key)


def fetch_manifest(store: RemoteStore, key: str) -> Manifest | None:
    """The checked remote manifest of ``key`` in the store's namespace, or None if it has none.

    Raises:
        UntrustedArtifactError: If the manifest is refused.
        RemoteUnavailableError: On a network fault.
    """
    data = store.get(manifest_object(key))
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


def _fetch_one(
    cache: Cache,
    store: RemoteStore,
    staging: Path,
    rels: list[str],
    entry: FileEntry,
    stop: threading.Event,
) -> int:
    """Put the files ``rels`` (one content) into ``staging``: from the local blob store
    if it has the bytes, else downloaded once. Returns the bytes downloaded."""
    local = cache.blob_path(entry.digest)
    if blob_ok(local, entry):
        data, received = local.read_bytes(), 0  # install_artifact links it back to the blob
    else:
        fetched = store.get(blob_object(entry.digest))
        if fetched is None:
            raise RemoteUnavailableError(
                f"remote {store.location}: blob {entry.digest} of {rels[0]} is missing "
                "(expired by a lifecycle rule, or removed)"
            )
        if len(fetched) != entry.size or blake3.blake3(fetched).hexdigest() != entry.digest:
            raise UntrustedArtifactError(
                f"remote blob of {rels[0]} ({entry.digest[:16]}…) does not match the manifest's "
                f"digest ({len(fetched)} bytes, the manifest says {entry.size}): refused",
                reason="bad-digest",
            )
        data, received = fetched, len(fetched)
    for rel in rels:
        if stop.is_set():  # the pull gave up meanwhile: its scratch is being removed
            return 0
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return received


def _download(
    cache: Cache, store: RemoteStore, manifest: Manifest, staging: Path, deadline: float
) -> int:
    by_digest: dict[str, list[str]] = {}
    for rel, entry in sorted(manifest.files.items()):
        by_digest.setdefault(entry.digest, []).append(rel)
    stop = threading.Event()
    pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="reflex-buildd-pull")
    try:
        futures: list[Future[int]] = [
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
        staging.mkdir(parents=True)
        try:
            received = _download(cache, store, manifest, staging, deadline)
            install_seconds = time.monotonic()
            install_artifact(cache, staging, manifest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        append_journal(
            cache,
            "pulled",
            key,
            remote=settings.url,
            namespace=store.namespace,
            bytes=received,
            seconds=round(time.monotonic() - started, 3),
            install_seconds=round(time.monotonic() - install_seconds, 3),
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
