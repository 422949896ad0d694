"""A project's warm build workspace: who may build in it, and what it may keep.

The workspace (``work/<project-id>/web``, Reflex's ``.web`` through
``REFLEX_WEB_WORKDIR``) exists for ``node_modules``: a build that finds its
frontend packages installed skips most of ``bun install``. It must never make
a build differ from one in a fresh workspace, and Reflex's compile and vite only
ever *add* to ``.web``: the copy of a deleted asset stays in ``public/`` (and is
published again), as does a file whose name vite cannot read (and every later
build fails on it). So, before every build, under the workspace lock:

1. **Leftovers of an earlier build are killed.** Every process of an export
   carries the tenant token of its build in its environment (children
   inherit it through Reflex, bun and node), and the token is recorded in
   ``workspace.json``. A builder killed with SIGKILL takes its export with it
   (parent-death signal), but bun and node grandchildren outlive it for
   seconds; the next tenant finds them by the token in ``/proc/<pid>/environ``,
   kills them and waits until none is left before it starts its own export.
2. **Everything in ``web/`` except ``node_modules`` is removed**, so the build
   starts from what a fresh workspace holds plus the installed packages.
3. **``node_modules`` is kept only if it is exactly as the last successful
   build left it**: its fingerprint (path, type, size and mtime of every entry,
   about 30 ms for 10,000 files), the JS runtime and the Reflex version are
   recorded after each successful export and compared here. No record, a
   build killed or failed half-way through an install, another runtime or
   Reflex: it goes too, and this build installs afresh.

The packages themselves are pinned by the lockfiles Reflex restores from the
project's ``reflex.lock/`` (a build input), so the same inputs install the same
packages in either workspace.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3
from filelock import FileLock

from reflex_buildd_client.cache.atomic import write_atomic
from reflex_buildd_client.cache.status import this_process
from reflex_buildd_client.errors import ReflexBuilddError

__all__ = [
    "TENANT_ENV",
    "Tenancy",
    "Workspace",
    "WorkspaceBusyError",
    "fingerprint",
    "processes_with_token",
]

TENANT_ENV = "REFLEX_BUILDD_TENANT"
NODE_MODULES = "node_modules"
_RECORD_FORMAT = 1
# Killed processes vanish in milliseconds; a process in uninterruptible sleep
# (a stuck disk) may need longer, and building beside it would be worse.
_REAP_TIMEOUT = 30.0


class WorkspaceBusyError(ReflexBuilddError, RuntimeError):
    """Processes of an earlier build in the workspace would not die."""


def fingerprint(directory: Path) -> str | None:
    """A digest of every entry under ``directory`` (path, type, size, mtime); None if absent."""
    if not directory.is_dir():
        return None
    digest = blake3.blake3()
    # (directory to list, its path relative to ``directory`` as bytes)
    stack: list[tuple[str, bytes]] = [(str(directory), b"")]
    while stack:
        current, prefix = stack.pop()
        with os.scandir(current) as entries:
            listed = sorted(entries, key=lambda e: e.name)
        lines = []
        for entry in listed:
            st = entry.stat(follow_symlinks=False)
            rel = prefix + os.fsencode(entry.name)
            kind = b"l" if entry.is_symlink() else b"d" if entry.is_dir() else b"f"
            lines.append(b"%s\0%s\0%d\0%d\n" % (rel, kind, st.st_size, st.st_mtime_ns))
            if kind == b"d":
                stack.append((entry.path, rel + b"/"))
        digest.update(b"".join(lines))
    return digest.hexdigest()


def processes_with_token(token: str) -> list[int]:
    """Pids of this machine's processes whose environment holds ``TENANT_ENV=token``."""
    needle = f"{TENANT_ENV}={token}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            environ = Path("/proc", name, "environ").read_bytes()
        except OSError:
            continue  # gone, or another user's (not ours to kill)
        if needle in environ.split(b"\0"):
            found.append(int(name))
    return found


def reap(token: str, timeout: float = _REAP_TIMEOUT) -> int:
    """SIGKILL every process carrying ``token`` and wait until none is left.

    Returns:
        How many processes were found at first.

    Raises:
        WorkspaceBusyError: If some are still alive after ``timeout``.
    """
    first = processes_with_token(token)
    deadline = time.monotonic() + timeout
    pids = first
    while pids:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise WorkspaceBusyError(
                f"processes {sorted(pids)} of an earlier build are still alive after "
                f"{timeout:.0f}s; not building beside them"
            )
        time.sleep(0.01)
        pids = processes_with_token(token)
    return len(first)


@dataclass(frozen=True)
class Workspace:
    """Where one project's builds run.

    Attributes:
        web_dir: Reflex's ``.web`` (``REFLEX_WEB_WORKDIR``).
        record: ``workspace.json``: the current tenant and the trusted
            ``node_modules``.
        lock: Held by the one build inside.
    """

    web_dir: Path
    record: Path
    lock: Path

    def read_record(self) -> dict[str, Any]:
        """The record, or an empty one when missing or unreadable (trust nothing)."""
        try:
            data = json.loads(self.record.read_bytes())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) and data.get("format") == _RECORD_FORMAT else {}

    def write_record(self, data: dict[str, Any]) -> None:
        """Replace the record atomically (not durably: a lost update trusts less, not more)."""
        payload = json.dumps({**data, "format": _RECORD_FORMAT}, sort_keys=True)
        write_atomic(self.record, payload.encode(), durable=False)

    @contextlib.contextmanager
    def occupy(self, *, facts: dict[str, str]) -> Iterator[Tenancy]:
        """Hold the workspace for one build: lock, kill leftovers, reset (see module doc).

        Args:
            facts: What ``node_modules`` depends on besides its files (the JS
                runtime, the Reflex version); a change resets it.
        """
        self.lock.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.lock)):
            record = self.read_record()
            notes = []
            tenant = record.get("tenant") or {}
            if tenant.get("token") and (killed := reap(str(tenant["token"]))):
                notes.append(f"killed {killed} leftover process(es) of an earlier build")
            keep = self._reset(record, facts)
            notes.append(f"workspace reset; {NODE_MODULES} {'kept' if keep else 'removed'}")
            tenancy = Tenancy(self, token=uuid.uuid4().hex, facts=facts, notes=tuple(notes))
            self.write_record(
                {
                    "tenant": {**this_process(), "token": tenancy.token},
                    "node_modules": record.get("node_modules") if keep else None,
                }
            )
            try:
                yield tenancy
            finally:
                # Whatever the export left running (a bun that outlived its
                # parent) goes before the lock is handed on.
                reap(tenancy.token)
                # On a full disk even this small write may fail; the record
                # left behind then trusts less, never more (the tenant is
                # dead, and an old fingerprint no longer matches).
                with contextlib.suppress(OSError):
                    self.write_record({"tenant": None, "node_modules": tenancy.trusted()})

    def _reset(self, record: dict[str, Any], facts: dict[str, str]) -> bool:
        """Empty ``web/`` but for a trusted ``node_modules``; return whether it was kept."""
        web = self.web_dir
        web.mkdir(parents=True, exist_ok=True)
        trusted = record.get("node_modules") or {}
        modules = web / NODE_MODULES
        keep = (
            trusted.get("facts") == facts
            and trusted.get("fingerprint") is not None
            and trusted.get("fingerprint") == fingerprint(modules)
        )
        # os.scandir on a str path yields str names, with undecodable bytes
        # escaped, and unlink/rmtree take them back: a file name that is not
        # UTF-8 goes like any other.
        with os.scandir(web) as entries:
            doomed = [e.path for e in entries if not (keep and e.name == NODE_MODULES)]
        for path in doomed:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        return keep


@dataclass
class Tenancy:
    """One build's hold on a workspace."""

    workspace: Workspace
    token: str
    facts: dict[str, str]
    notes: tuple[str, ...]
    succeeded: bool = False

    @property
    def env(self) -> dict[str, str]:
        """Environment entries every process of the export must inherit."""
        return {TENANT_ENV: self.token}

    def trusted(self) -> dict[str, Any] | None:
        """What to record about ``node_modules`` once the build is over."""
        if not self.succeeded:
            # An export that failed or was killed may have stopped half-way
            # through an install; the fingerprint check decides next time,
            # against what the last successful build recorded.
            previous = self.workspace.read_record().get("node_modules")
            return previous if isinstance(previous, dict) else None
        modules = self.workspace.web_dir / NODE_MODULES
        return {"facts": self.facts, "fingerprint": fingerprint(modules)}
