"""What the remote tier holds, and how this cache has used it (``ls --remote``, ``status``)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from reflex_buildd_client.cache.manifest import MAX_MANIFEST_BYTES
from reflex_buildd_client.cache.status import read_journal
from reflex_buildd_client.cache.store import Cache
from reflex_buildd_client.errors import RemoteUnavailableError, UntrustedArtifactError
from reflex_buildd_client.remote.bucket import RemoteSettings, RemoteStore, manifest_object
from reflex_buildd_client.remote.envelope import open_envelope
from reflex_buildd_client.units import format_size, format_time

__all__ = [
    "REMOTE_EVENTS",
    "RemoteStatus",
    "list_remote",
    "remote_status",
    "render_remote",
    "render_remote_status",
]

# Journal events of the remote tier, counted by ``status``.
REMOTE_EVENTS = ("pulled", "remote-miss", "remote-error", "remote-refused", "pushed")


def _namespaces(settings: RemoteSettings) -> tuple[str, ...]:
    """The namespaces this machine reads, then the one it writes (each once)."""
    return tuple(dict.fromkeys((*settings.read_namespaces, settings.namespace)))


def list_remote(settings: RemoteSettings) -> list[dict[str, Any]]:
    """Every artifact in the namespaces this machine reads or writes, newest first,
    each checked as a host would check it.

    Raises:
        RemoteUnavailableError: If the remote cannot be listed.
    """
    rows: list[dict[str, Any]] = []
    for namespace in _namespaces(settings):
        store = RemoteStore(settings, namespace=namespace)
        for key in store.keys():
            try:  # at most the manifest limit is read: a huge object is a refused row
                data = store.get(manifest_object(key), max_bytes=MAX_MANIFEST_BYTES)
            except UntrustedArtifactError as exc:
                rows.append(_refused({"key": key, "namespace": namespace}, exc))
                continue
            if data is None:
                continue  # removed since the listing
            rows.append(_row(data, key, settings, namespace))
    rows.sort(key=lambda r: float(r["created"]), reverse=True)
    return rows


def _row(data: bytes, key: str, settings: RemoteSettings, namespace: str) -> dict[str, Any]:
    row: dict[str, Any] = {"key": key, "namespace": namespace, "trusted": True, "problem": None}
    try:
        opened = open_envelope(data, key, settings.trust, namespace)
    except UntrustedArtifactError as exc:
        return _refused(row, exc)
    manifest = opened.manifest
    row.update(
        signer=opened.signer,
        created=manifest.created,
        size=sum(e.size for e in manifest.files.values()),
        project=manifest.project.get("app_name", "?"),
        js_runtime=manifest.build.get("js_runtime"),
    )
    return row


def _refused(row: dict[str, Any], exc: UntrustedArtifactError) -> dict[str, Any]:
    return {**row, "trusted": False, "problem": str(exc), "created": 0.0, "size": 0, "project": "?"}


@dataclasses.dataclass
class RemoteStatus:
    """The remote in ``reflex-buildd status`` (``to_json`` is its part of ``--json``).

    Attributes:
        url: The remote, or None when none is configured.
        signed: Whether this machine signs what it pushes (any kind of key).
        events: This cache's journal counts of :data:`REMOTE_EVENTS`.
        namespace: The namespace it pushes into.
        read_namespaces: The namespaces it pulls from, in order.
        verifies: What a manifest must carry to be accepted here.
        signs: What this machine's pushes carry (or why it never pushes).
        artifacts: Manifests in the namespaces it reads (None: not asked, or unreachable).
        reachable: Whether listing it worked (None: no remote).
        error: Why not.
    """

    url: str | None
    signed: bool
    events: dict[str, int]
    namespace: str | None = None
    read_namespaces: list[str] | None = None
    verifies: str | None = None
    signs: str | None = None
    artifacts: int | None = None
    reachable: bool | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The remote's status as plain JSON data."""
        return dataclasses.asdict(self)


def remote_status(cache: Cache, settings: RemoteSettings | None) -> RemoteStatus:
    """The remote's URL, whether it answers, its artifact count, and this cache's hits/misses."""
    counts = Counter(
        str(e.get("event")) for e in read_journal(cache) if e.get("event") in REMOTE_EVENTS
    )
    events = {name: counts.get(name, 0) for name in REMOTE_EVENTS}
    if settings is None:
        return RemoteStatus(url=None, signed=False, events=events)
    trust = settings.trust
    info = RemoteStatus(
        url=settings.url,
        signed=settings.signer is not None or settings.signing_key is not None,
        events=events,
        namespace=settings.namespace,
        read_namespaces=list(settings.read_namespaces),
        verifies=trust.verifies(),
        signs=trust.signs(),
    )
    try:
        info.artifacts = sum(
            len(RemoteStore(settings, namespace=ns).keys()) for ns in settings.read_namespaces
        )
        info.reachable = True
    except RemoteUnavailableError as exc:
        info.reachable, info.error = False, str(exc)
    return info


def render_remote(rows: list[dict[str, Any]]) -> str:
    """``ls --remote``: one line per artifact, refused ones with the reason."""
    lines = [
        f"{'KEY':<32}  {'NAMESPACE':<12}  {'SIZE':>10}  {'CREATED':<19}  {'RUNTIME':<12}  PROJECT"
    ]
    for r in rows:
        if not r["trusted"]:
            lines.append(f"{r['key']:<32}  {r['namespace']:<12}  REFUSED: {r['problem']}")
            continue
        lines.append(
            f"{r['key']:<32}  {r['namespace']:<12}  {format_size(r['size']):>10}  "
            f"{format_time(r['created']):<19}  {r.get('js_runtime') or '?':<12}  {r['project']}"
        )
    return "\n".join(lines)


def render_remote_status(rem: RemoteStatus) -> str:
    """``status``'s remote lines: where, reachable or not, and the journal; the namespaces
    and the trust in force (fingerprints and key ids only)."""
    events = ", ".join(f"{name} {n}" for name, n in rem.events.items())
    if rem.url is None:
        return f"remote: none (REFLEX_BUILDD_REMOTE); journal: {events}"
    reach = (
        f"reachable, {rem.artifacts} artifacts" if rem.reachable else f"UNREACHABLE: {rem.error}"
    )
    return "\n".join(
        (
            f"remote: {rem.url} ({reach}); journal: {events}",
            f"  namespaces: pushes into {rem.namespace}, reads {', '.join(rem.read_namespaces or ())}",
            f"  trust: verifies {rem.verifies}; signs {rem.signs}",
        )
    )
