"""What the remote tier holds, and how this cache has used it (``ls --remote``, ``status``)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

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


def list_remote(settings: RemoteSettings) -> list[dict[str, Any]]:
    """Every artifact in the remote, newest first, each checked as a host would check it.

    Raises:
        RemoteUnavailableError: If the remote cannot be listed.
    """
    store = RemoteStore(settings)
    rows: list[dict[str, Any]] = []
    for key in store.keys():
        data = store.get(manifest_object(key))
        if data is None:
            continue  # removed since the listing
        row: dict[str, Any] = {"key": key, "trusted": True, "problem": None}
        try:
            manifest = open_envelope(data, key, settings.signing_key)
        except UntrustedArtifactError as exc:
            row.update(trusted=False, problem=str(exc), created=0.0, size=0, project="?")
        else:
            row.update(
                created=manifest.created,
                size=sum(e.size for e in manifest.files.values()),
                project=manifest.project.get("app_name", "?"),
                js_runtime=manifest.build.get("js_runtime"),
            )
        rows.append(row)
    rows.sort(key=lambda r: float(r["created"]), reverse=True)
    return rows


@dataclasses.dataclass
class RemoteStatus:
    """The remote in ``reflex-buildd status`` (``to_json`` is its part of ``--json``).

    Attributes:
        url: The remote, or None when none is configured.
        signed: Whether a signing key is set.
        events: This cache's journal counts of :data:`REMOTE_EVENTS`.
        artifacts: Manifests in the remote (None: not asked, or unreachable).
        reachable: Whether listing it worked (None: no remote).
        error: Why not.
    """

    url: str | None
    signed: bool
    events: dict[str, int]
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
    info = RemoteStatus(
        url=settings.url if settings else None,
        signed=bool(settings and settings.signing_key),
        events={name: counts.get(name, 0) for name in REMOTE_EVENTS},
    )
    if settings is None:
        return info
    try:
        info.artifacts, info.reachable = len(RemoteStore(settings).keys()), True
    except RemoteUnavailableError as exc:
        info.reachable, info.error = False, str(exc)
    return info


def render_remote(rows: list[dict[str, Any]]) -> str:
    """``ls --remote``: one line per artifact, refused ones with the reason."""
    lines = [f"{'KEY':<32}  {'SIZE':>10}  {'CREATED':<19}  {'RUNTIME':<12}  PROJECT"]
    for r in rows:
        if not r["trusted"]:
            lines.append(f"{r['key']:<32}  REFUSED: {r['problem']}")
            continue
        lines.append(
            f"{r['key']:<32}  {format_size(r['size']):>10}  {format_time(r['created']):<19}  "
            f"{r.get('js_runtime') or '?':<12}  {r['project']}"
        )
    return "\n".join(lines)


def render_remote_status(rem: RemoteStatus) -> str:
    """``status``'s remote line: where, reachable or not, signed or not, and the journal."""
    events = ", ".join(f"{name} {n}" for name, n in rem.events.items())
    if rem.url is None:
        return f"remote: none (REFLEX_BUILDD_REMOTE); journal: {events}"
    reach = (
        f"reachable, {rem.artifacts} artifacts" if rem.reachable else f"UNREACHABLE: {rem.error}"
    )
    signed = "signed" if rem.signed else "unsigned (no REFLEX_BUILDD_SIGNING_KEY)"
    return f"remote: {rem.url} ({reach}; {signed}); journal: {events}"
