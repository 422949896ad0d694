"""Upload a published artifact to the remote tier (builders only; hosts just read).

Order is the guarantee: every blob first, each at most once (content-addressed:
a HEAD that finds it skips it, and a create-only PUT that loses a race is as
good as one that wins), the manifest last and create-only. Readers look for
the manifest, so they never see a partial upload; of two builders pushing one
key, the first manifest stays and the second push is a success too (artifacts
of one key are interchangeable).

Every file is hashed again before it is sent: bytes that rotted on this disk
are never spread to the fleet. Everything goes into this machine's namespace
(``REFLEX_BUILDD_REMOTE_NAMESPACE``), its manifest signed for that namespace
and key (:mod:`reflex_buildd_client.remote.signing`). A machine holding only
public keys refuses before sending anything.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import blake3

from reflex_buildd_client import metrics
from reflex_buildd_client.cache.manifest import FileEntry
from reflex_buildd_client.cache.status import append_journal
from reflex_buildd_client.cache.store import Artifact, Cache
from reflex_buildd_client.errors import (
    CorruptArtifactError,
    PushRefusedError,
    RemoteUnavailableError,
)
from reflex_buildd_client.remote.bucket import (
    RemoteSettings,
    RemoteStore,
    blob_object,
    manifest_object,
)
from reflex_buildd_client.remote.envelope import seal

__all__ = ["PushReport", "push_artifact"]

_WORKERS = 8


@dataclass(frozen=True)
class PushReport:
    """What one push did.

    Attributes:
        key: The key pushed.
        namespace: The namespace it went to.
        manifest_written: False when the remote already had this key's manifest
            (an earlier push, or a racing builder that won).
        blobs_sent: Blobs uploaded by this push.
        bytes_sent: Their bytes.
        blobs_skipped: Blobs the remote already had.
        bytes_skipped: Their bytes.
        seconds: Wall time.
    """

    key: str
    namespace: str
    manifest_written: bool
    blobs_sent: int = 0
    bytes_sent: int = 0
    blobs_skipped: int = 0
    bytes_skipped: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        """The report as a JSON-ready mapping."""
        return asdict(self)

    def summary(self) -> str:
        """One line for the CLI."""
        if not self.manifest_written and not self.blobs_sent:
            return f"remote already has {self.key} in namespace {self.namespace}"
        state = "pushed" if self.manifest_written else "completed (another builder won)"
        return (
            f"{state} {self.key} to namespace {self.namespace}: {self.blobs_sent} blobs sent ({self.bytes_sent} bytes), "
            f"{self.blobs_skipped} already there ({self.bytes_skipped} bytes) "
            f"in {self.seconds:.2f}s"
        )


def _send_blob(store: RemoteStore, artifact: Artifact, rel: str, entry: FileEntry) -> bool:
    name = blob_object(entry.digest)
    if store.exists(name):
        return False
    data = (artifact.path / rel).read_bytes()
    if len(data) != entry.size or blake3.blake3(data).hexdigest() != entry.digest:
        raise CorruptArtifactError(
            f"{artifact.path / rel} no longer matches its manifest: not pushed "
            "(run reflex-buildd verify)"
        )
    return store.put_new(name, data)


def push_artifact(cache: Cache, artifact: Artifact, settings: RemoteSettings) -> PushReport:
    """Upload ``artifact`` to the remote (see the module doc).

    Raises:
        PushRefusedError: This machine holds only public keys (nothing is sent).
        RemoteUnavailableError: On a network fault (the remote may hold some
            blobs, never the manifest; pushing again completes it).
        CorruptArtifactError: If a local file no longer matches the manifest.
    """
    if (refusal := settings.trust.push_refusal()) is not None:
        metrics.pushed("refused")
        raise PushRefusedError(refusal)
    try:
        return _push(cache, artifact, settings)
    except RemoteUnavailableError:
        metrics.pushed("error")
        raise


def _push(cache: Cache, artifact: Artifact, settings: RemoteSettings) -> PushReport:
    started = time.monotonic()
    store = RemoteStore(settings)
    key = artifact.key
    if store.exists(manifest_object(key)):
        metrics.pushed("present")
        return PushReport(
            key,
            store.namespace,
            manifest_written=False,
            seconds=round(time.monotonic() - started, 3),
        )
    unique: dict[str, tuple[str, FileEntry]] = {}
    for rel, entry in sorted(artifact.manifest.files.items()):
        unique.setdefault(entry.digest, (rel, entry))
    with ThreadPoolExecutor(_WORKERS, thread_name_prefix="reflex-buildd-push") as pool:
        sent = list(
            pool.map(lambda item: _send_blob(store, artifact, *item), list(unique.values()))
        )
    sizes = [entry.size for _rel, entry in unique.values()]
    sealed = seal(artifact.manifest, settings.trust, store.namespace)
    written = store.put_new(manifest_object(key), sealed)
    report = PushReport(
        key=key,
        namespace=store.namespace,
        manifest_written=written,
        blobs_sent=sum(sent),
        bytes_sent=sum(size for size, s in zip(sizes, sent, strict=True) if s),
        blobs_skipped=len(sent) - sum(sent),
        bytes_skipped=sum(size for size, s in zip(sizes, sent, strict=True) if not s),
        seconds=round(time.monotonic() - started, 3),
    )
    fields = {name: value for name, value in report.to_json().items() if name != "key"}
    append_journal(cache, "pushed", key, remote=settings.url, **fields)
    return report
