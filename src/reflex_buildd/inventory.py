"""What the cache holds: ``ls``, ``status`` and ``verify`` behind the CLI.

Read-only except :func:`verify_cache`, which quarantines what it finds corrupt.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reflex_buildd_client.cache.lease import live_leases
from reflex_buildd_client.cache.manifest import Manifest
from reflex_buildd_client.cache.status import process_alive, read_status
from reflex_buildd_client.cache.store import MANIFEST_NAME, Artifact, Cache
from reflex_buildd_client.cache.verify import find_problems, quarantine
from reflex_buildd_client.errors import ArtifactMissingError, CorruptArtifactError
from reflex_buildd_client.units import format_size, format_time

from .gc import ArtifactInfo, exclusive_sizes, scan, unique_size

__all__ = [
    "ArtifactRow",
    "BuildInfo",
    "CacheStatus",
    "DaemonInfo",
    "VerifyResult",
    "cache_status",
    "list_artifacts",
    "render_artifacts",
    "render_status",
    "resolve_key",
    "tree_size",
    "verify_cache",
]


@dataclass(frozen=True)
class ArtifactRow:
    """One line of ``reflex-buildd ls``."""

    key: str
    project: str
    app_name: str
    apparent: int
    unique: int
    created: float
    last_used: float
    live_hosts: int

    def to_json(self) -> dict[str, Any]:
        """The row as ``ls --json`` prints it."""
        return {
            "key": self.key,
            "project": self.project,
            "app_name": self.app_name,
            "size": self.apparent,
            "unique_size": self.unique,
            "created": self.created,
            "last_used": self.last_used,
            "live_hosts": self.live_hosts,
        }


def list_artifacts(cache: Cache) -> list[ArtifactRow]:
    """Every artifact, most recently used first.

    ``unique`` is what evicting the artifact alone would free (bytes it shares
    with no other artifact); ``apparent`` counts every file in full.
    """
    infos = scan(cache)
    exclusive = exclusive_sizes([i.candidate() for i in infos])
    rows = [
        ArtifactRow(
            i.key,
            i.project,
            i.app_name,
            i.apparent,
            exclusive[i.key],
            i.created,
            i.last_used,
            i.live_hosts,
        )
        for i in infos
    ]
    return sorted(rows, key=lambda r: (-r.last_used, r.key))


def tree_size(root: Path) -> int:
    """Bytes of the regular files under ``root``, each inode once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def _json_records(paths: list[Path]) -> list[dict[str, Any]]:
    records = []
    for path in paths:
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return records


@dataclass(frozen=True)
class DaemonInfo:
    """A daemon record and whether its writer lives (None: another host)."""

    project: str | None
    pid: int | None
    host: str | None
    key: str | None
    state: str | None
    alive: bool | None


@dataclass(frozen=True)
class BuildInfo:
    """A build in progress or failed.

    ``superseded_by``: for a failure, the newer artifact of the same project
    built after it (the failure is stale: its sources have moved on); None
    while the failure is the project's latest word.
    """

    key: str
    state: str
    pid: int | None
    host: str | None
    project: str | None
    log: str | None
    time: float | None
    superseded_by: str | None = None


@dataclass(frozen=True)
class CacheStatus:
    """What ``reflex-buildd status`` reports (``to_json`` is its ``--json``)."""

    cache: str
    artifacts: int
    leases: dict[str, int]
    daemons: list[DaemonInfo]
    builds: list[BuildInfo]
    sizes: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        """The status as plain JSON data."""
        return dataclasses.asdict(self)


def _newest_by_project(infos: list[ArtifactInfo]) -> dict[str, ArtifactInfo]:
    newest: dict[str, ArtifactInfo] = {}
    for info in infos:
        if info.project not in newest or info.created > newest[info.project].created:
            newest[info.project] = info
    return newest


def _builds(cache: Cache, infos: list[ArtifactInfo]) -> list[BuildInfo]:
    """Builds in progress or failed; a failure older than its project's newest
    artifact is marked as superseded by it."""
    newest = _newest_by_project(infos)
    builds = []
    for record in _json_records(cache.status_record_paths()):
        key = str(record.get("key", ""))
        status = read_status(cache, key)
        if status.state.value not in ("building", "failed"):
            continue
        project, when = record.get("project"), record.get("time")
        later = newest.get(str(project))
        superseded = None
        if status.state.value == "failed" and later is not None and when is not None:
            superseded = later.key if later.created > float(when) else None
        builds.append(
            BuildInfo(
                key=key,
                state=status.state.value,
                pid=record.get("pid"),
                host=record.get("host"),
                project=project,
                log=record.get("log"),
                time=when,
                superseded_by=superseded,
            )
        )
    # The project's latest word first: current failures and builds, then stale ones.
    return sorted(builds, key=lambda b: (b.superseded_by is not None, -(b.time or 0.0)))


def cache_status(cache: Cache) -> CacheStatus:
    """Daemons, builds in progress or failed, leases and disk use of the cache."""
    daemons = [
        DaemonInfo(
            project=r.get("project"),
            pid=r.get("pid"),
            host=r.get("host"),
            key=r.get("key"),
            state=r.get("state"),
            alive=process_alive(r),
        )
        for r in _json_records(cache.daemon_record_paths())
    ]
    infos = scan(cache)
    builds = _builds(cache, infos)
    sizes = {
        "artifacts": unique_size(i.candidate() for i in infos),
        "artifacts_apparent": sum(i.apparent for i in infos),
        "work": tree_size(cache.work_root),
        "tmp": tree_size(cache.tmp_dir()),
        "quarantine": tree_size(cache.quarantine_dir),
        "logs": tree_size(cache.logs_dir),
        # Blobs are the same inodes as artifact files; only unreferenced ones add.
        "total": tree_size(cache.root),
    }
    return CacheStatus(
        cache=str(cache.root),
        artifacts=len(infos),
        leases=live_leases(cache),
        daemons=daemons,
        builds=builds,
        sizes=sizes,
    )


def resolve_key(cache: Cache, prefix: str) -> str:
    """The one artifact key starting with ``prefix``.

    Raises:
        ArtifactMissingError: If none or several match.
    """
    keys = [key for key in cache.keys() if key.startswith(prefix)]
    if len(keys) != 1:
        what = "no artifact" if not keys else f"{len(keys)} artifacts"
        raise ArtifactMissingError(
            f"{what} in {cache.root} with a key starting {prefix!r}", key=prefix
        )
    return keys[0]


@dataclass
class VerifyResult:
    """The verdict on one artifact."""

    key: str
    ok: bool
    problems: dict[str, str] = field(default_factory=dict)
    quarantined: str | None = None


def verify_cache(cache: Cache, keys: list[str] | None = None) -> list[VerifyResult]:
    """Re-hash artifacts (all, or ``keys``) and quarantine the corrupt ones."""
    if keys is None:
        keys = cache.keys()
    results = []
    for key in keys:
        path = cache.artifact_dir(key)
        manifest: Manifest | None = None
        try:
            manifest = cache.read_manifest(key)
        except CorruptArtifactError as exc:
            problems = {MANIFEST_NAME: str(exc)}
        else:
            if manifest is not None:
                problems = find_problems(Artifact(path=path, manifest=manifest))
            elif path.exists():
                problems = {MANIFEST_NAME: "is missing"}
            else:
                continue  # evicted while we looked
        if not problems:
            results.append(VerifyResult(key, True))
            continue
        reason = "; ".join(f"{rel} {why}" for rel, why in problems.items())
        where = quarantine(cache, key, reason=reason, manifest=manifest, bad_files=list(problems))
        results.append(VerifyResult(key, False, problems, str(where) if where else None))
    return results


def render_artifacts(rows: list[ArtifactRow]) -> str:
    """``ls``: one line per artifact under a header (what ``--json`` says, for people)."""
    lines = [
        f"{'KEY':<32}  {'SIZE':>10}  {'UNIQUE':>10}  {'CREATED':<19}  {'LAST USED':<19}  HOSTS  PROJECT"
    ]
    lines += [
        f"{r.key:<32}  {format_size(r.apparent):>10}  {format_size(r.unique):>10}  "
        f"{format_time(r.created):<19}  {format_time(r.last_used):<19}  {r.live_hosts:>5}  "
        f"{r.project}"
        for r in rows
    ]
    return "\n".join(lines)


_ALIVE = {True: "alive", False: "dead", None: "other host"}


def _build_state(build: BuildInfo) -> str:
    if build.superseded_by is None:
        return build.state
    # Its project has built a newer key since: history, not a problem now.
    return f"failed, stale: {build.superseded_by[:12]} built since"


def render_status(info: CacheStatus) -> str:
    """``status``'s local part: the cache, leases, daemons, builds, disk use."""
    lines = [
        f"cache: {info.cache}",
        f"artifacts: {info.artifacts}, leased: "
        + (", ".join(f"{k[:12]} x{n}" for k, n in info.leases.items()) or "none"),
        "daemons:" + ("" if info.daemons else " none"),
    ]
    lines += [
        f"  pid {d.pid} on {d.host} ({_ALIVE[d.alive]}): {d.project} "
        f"key {str(d.key)[:12]} {d.state}"
        for d in info.daemons
    ]
    lines.append("builds:" + ("" if info.builds else " none in progress or failed"))
    lines += [
        f"  {b.key} {_build_state(b)} (pid {b.pid} on {b.host}) {b.project}; log: {b.log}"
        for b in info.builds
    ]
    sizes = info.sizes
    lines.append(
        "disk: "
        + ", ".join(
            f"{name} {format_size(sizes[name])}"
            for name in ("artifacts", "work", "tmp", "quarantine", "logs", "total")
        )
        + f" (artifacts without sharing: {format_size(sizes['artifacts_apparent'])})"
    )
    return "\n".join(lines)
