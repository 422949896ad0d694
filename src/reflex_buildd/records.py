"""What one build tells others while it runs: its status record and its journal lines.

A build's life is ``building`` (with its current phase, so that waiters can log it) and then
``published``, ``failed`` (with the log's tail), ``cancelled`` or a fault of the cache. Each
step writes the key's status record and one journal line together, here, instead of at each
place a build can end.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from reflex_buildd_client.cache.status import (
    BuildState,
    append_journal,
    clear_record,
    write_record,
)
from reflex_buildd_client.cache.store import Cache
from reflex_buildd_client.errors import BuildFailedError, CacheIOError
from reflex_buildd_client.project import Project

from .progress import Phase

__all__ = ["BuildRecords"]


@dataclass(frozen=True)
class BuildRecords:
    """The records of one build of ``key`` of ``project``, whose log is ``log``."""

    cache: Cache
    key: str
    project: Project
    log: Path
    since: float = field(default_factory=time.time)

    def _write(self, state: BuildState, **fields: object) -> None:
        write_record(
            self.cache, self.key, state, log=str(self.log), project=str(self.project.root), **fields
        )

    def _journal(self, event: str, **fields: object) -> None:
        append_journal(self.cache, event, self.key, project=str(self.project.root), **fields)

    def started(self) -> None:
        """``building``, and a ``start`` line."""
        self._write(BuildState.BUILDING)
        self._journal("start")

    def sharing(self, progress: Phase) -> Phase:
        """``progress``, and each phase in the status record: waiters log it too."""

        def phase(name: str) -> None:
            progress(name)
            # The record's time stays the build's start; only the phase changes.
            with contextlib.suppress(OSError):
                self._write(BuildState.BUILDING, phase=name, time=self.since)

        return phase

    def published(self, seconds: float) -> None:
        """No record (the artifact says it all), and a ``published`` line."""
        clear_record(self.cache, self.key)
        self._journal("published", seconds=seconds)

    def cancelled(self) -> None:
        """No record, and a ``cancelled`` line."""
        clear_record(self.cache, self.key)
        self._journal("cancelled")

    def failed(self, exc: BuildFailedError, *, cause: str = "") -> None:
        """``failed`` with the log's tail, exit code and one-line cause, and a ``failed`` line."""
        self._write(BuildState.FAILED, tail=exc.log_tail, exit_code=exc.exit_code, cause=cause)
        self._journal("failed")

    def fault(self, fault: CacheIOError) -> None:
        """The cache failed the build: say so in the log and the record if there is room.

        Never leaves ``building`` behind: when not even a small record fits, the key reads
        as absent, and the next process to need it tries (and fails) for itself.
        """
        with contextlib.suppress(OSError), self.log.open("a") as out:
            out.write(f"reflex-buildd: {fault}\n")
        try:
            self._write(BuildState.FAILED, tail=str(fault), exit_code=None)
            self._journal("failed", error=str(fault))
        except OSError:
            self.forget()

    def forget(self) -> None:
        """Remove our ``building`` record, so nobody waits for a build that stopped."""
        with contextlib.suppress(OSError):
            clear_record(self.cache, self.key)
