"""Build status records and the build journal, shared by daemons, CLIs and hosts.

A key is in one of four states, and any process can tell which:

- **ready**: the artifact's manifest exists (nothing else counts);
- **building**: the status record says ``building`` and its writer is alive;
- **failed**: the status record says ``failed`` (exit code, log path, tail);
- **absent**: neither, or a ``building`` record whose writer died (SIGKILL,
  power loss): a record is only as good as the process behind it.

Liveness: on the writer's own host, its pid must exist with the same start
time (pids are reused); from another host the key's lock is probed instead
(the builder holds it for the whole build).

Every build start and end is also appended to the journal, one JSON
object a line (``O_APPEND`` writes of one short line are atomic on local
filesystems), so tools and tests can count builds instead of guessing from
timing.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from .. import metrics
from ..project import project_id
from .atomic import write_atomic
from .locks import lock_held
from .store import Cache

__all__ = [
    "BuildState",
    "DaemonRecord",
    "KeyStatus",
    "append_journal",
    "clear_daemon",
    "clear_record",
    "process_alive",
    "read_daemon",
    "read_journal",
    "read_status",
    "record_lookup",
    "this_process",
    "write_daemon",
    "write_record",
]


class BuildState(str, Enum):
    """Where a key stands."""

    READY = "ready"
    BUILDING = "building"
    FAILED = "failed"
    ABSENT = "absent"


@dataclass(frozen=True)
class KeyStatus:
    """The state of a key and the record behind it (if any)."""

    state: BuildState
    record: dict[str, Any] | None = None


def _boot_time_of(pid: int) -> str | None:
    # Field 22 of /proc/<pid>/stat: the start time in clock ticks since boot.
    # Together with the pid it names one process, even after pid reuse.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def this_process() -> dict[str, Any]:
    """Who is writing: pid, host, process start time."""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "pid_start": _boot_time_of(os.getpid()),
    }


def process_alive(record: dict[str, Any]) -> bool | None:
    """Whether the writer of ``record`` is alive; None if it runs on another host."""
    if record.get("host") != socket.gethostname():
        return None
    pid = int(record.get("pid", 0))
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    started = record.get("pid_start")
    return started is None or _boot_time_of(pid) in (None, started)


def write_record(cache: Cache, key: str, state: BuildState, **fields: Any) -> None:
    """Atomically replace the status record of ``key``."""
    record = {"key": key, "state": state.value, "time": time.time(), **this_process(), **fields}
    write_atomic(cache.status_path(key), json.dumps(record, sort_keys=True).encode())


def clear_record(cache: Cache, key: str) -> None:
    """Remove the status record of ``key`` (the artifact now speaks for it)."""
    cache.status_path(key).unlink(missing_ok=True)


def read_status(cache: Cache, key: str) -> KeyStatus:
    """The current state of ``key`` (see the module doc)."""
    if cache.has_manifest(key):
        return KeyStatus(BuildState.READY)
    try:
        record = json.loads(cache.status_path(key).read_text())
    except (OSError, ValueError):
        return KeyStatus(BuildState.ABSENT)
    if record.get("state") == BuildState.FAILED.value:
        return KeyStatus(BuildState.FAILED, record)
    if record.get("state") == BuildState.BUILDING.value:
        alive = process_alive(record)
        if alive is None:
            alive = lock_held(cache.lock_path(key))
        if alive:
            return KeyStatus(BuildState.BUILDING, record)
    return KeyStatus(BuildState.ABSENT, record)


def append_journal(cache: Cache, event: str, key: str, **fields: Any) -> None:
    """Record one event (``start``, ``published``, ``failed``, ``cancelled``, ``hit``, ``miss``, ...).

    Counted for metrics first (:mod:`reflex_buildd_client.metrics`), so a cache
    that cannot take the line still counts the event.
    """
    metrics.journal_event(event, fields)
    line = json.dumps({"event": event, "key": key, "time": time.time(), **this_process(), **fields})
    path = cache.journal_path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def record_lookup(cache: Cache, key: str, *, hit: bool, project: Path | None) -> None:
    """Journal one ``hit`` (the cache had ``key``) or ``miss`` (``reflex-buildd stats``).

    Statistics only: a journal that cannot be written never stops a host.
    """
    extra = {"project": str(project)} if project is not None else {}
    try:
        append_journal(cache, "hit" if hit else "miss", key, **extra)
    except OSError:
        pass


def read_journal(cache: Cache) -> list[dict[str, Any]]:
    """Every journal event, oldest first (torn or foreign lines skipped)."""
    try:
        lines = cache.journal_path.read_text().splitlines()
    except OSError:
        return []
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


@dataclass(frozen=True)
class DaemonRecord:
    """What the daemon watching a project last said about itself."""

    pid: int
    host: str
    key: str
    state: str
    inputs: dict[str, Any]
    alive: bool | None


def _daemon_path(cache: Cache, root: Path) -> Path:
    return cache.daemon_record_path(project_id(root))


def write_daemon(cache: Cache, root: Path, *, key: str, state: str, inputs: dict[str, Any]) -> None:
    """Record the daemon's current key (and its inputs, to explain mismatches)."""
    record = {
        "project": str(root),
        "key": key,
        "state": state,
        "inputs": inputs,
        "time": time.time(),
        **this_process(),
    }
    # Rewritten on every state change: not worth an fsync (a lost record is re-sent).
    write_atomic(
        _daemon_path(cache, root), json.dumps(record, sort_keys=True).encode(), durable=False
    )


def clear_daemon(cache: Cache, root: Path) -> None:
    """Remove the daemon record of the project at ``root`` if this process wrote it.

    A daemon that stops cleanly leaves nothing behind; a record that remains
    belongs to a daemon that died (``status`` shows it as dead), or to a newer
    daemon that took over meanwhile (kept).
    """
    path = _daemon_path(cache, root)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    me = this_process()
    if (record.get("pid"), record.get("host")) == (me["pid"], me["host"]):
        path.unlink(missing_ok=True)


def read_daemon(cache: Cache, root: Path) -> DaemonRecord | None:
    """The daemon record of the project at ``root``, if any."""
    try:
        record = json.loads(_daemon_path(cache, root).read_text())
    except (OSError, ValueError):
        return None
    return DaemonRecord(
        pid=int(record.get("pid", 0)),
        host=str(record.get("host", "")),
        key=str(record.get("key", "")),
        state=str(record.get("state", "")),
        inputs=dict(record.get("inputs", {})),
        alive=process_alive(record),
    )
