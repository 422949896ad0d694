"""The daemon: watch a project, key it, build and publish each new key.

One thread watches and keys; one worker thread builds. A change that makes a
new key while a build runs cancels that build (its export is killed, nothing
is published) and the new key is built instead: a burst of edits costs one
build of the last state, not one per save. Even an uncancelled build could
never publish stale output under a newer key: each build works on a snapshot
of exactly the inputs its key names.

One daemon per (project, cache): a second one exits with the first's pid.
Shutdown (SIGTERM/SIGINT, or ``stop``) cancels the running build and returns.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from reflex_buildd_client.cache.status import (
    clear_daemon,
    read_daemon,
    record_lookup,
    write_daemon,
)
from reflex_buildd_client.cache.store import Cache
from reflex_buildd_client.errors import BuildFailedError, ReflexBuilddError
from reflex_buildd_client.inputs.sources import compute_key
from reflex_buildd_client.keys.schema import KeyInputs
from reflex_buildd_client.project import Project, project_id
from reflex_buildd_client.remote.pull import remote_lookup
from reflex_buildd_client.settings import Settings

from .build import BuildCancelledError, SourcesChangedError, run_build
from .gc import auto_gc
from .report import Reporter
from .watch import ChangeWatcher

__all__ = ["DaemonAlreadyRunningError", "DaemonOptions", "run_daemon"]

logger = logging.getLogger("reflex_buildd")


class DaemonAlreadyRunningError(ReflexBuilddError, RuntimeError):
    """Another daemon already watches this project with this cache."""


@dataclass(frozen=True)
class DaemonOptions:
    """How the daemon watches.

    Attributes:
        settings: The settings of the command that runs the daemon: polling
            (``REFLEX_BUILDD_POLL``), the remote tier (a new key is pulled from it if there,
            and every key this daemon makes ready is pushed to it unless it has it), gc.
        debounce: Seconds of quiet that end a burst of saves.
        extra_inputs: Declared extra input globs (as ``--input``).
        extra_env: Declared extra environment variables (as ``--input-env``).
    """

    settings: Settings
    debounce: float = 0.1
    extra_inputs: tuple[str, ...] = ()
    extra_env: tuple[str, ...] = ()


class _Job:
    """One build of one key in a worker thread, cancellable."""

    def __init__(
        self,
        project: Project,
        cache: Cache,
        key: str,
        inputs: KeyInputs,
        reporter: Reporter,
        settings: Settings,
    ) -> None:
        self.key = key
        self.inputs = inputs
        self.cancel = threading.Event()
        self.outcome: str = "running"
        self.last_outcome = ""
        self.recorded = False
        self._project, self._cache, self._reporter = project, cache, reporter
        self._settings = settings
        self.thread = threading.Thread(target=self._run, name=f"build-{key[:8]}", daemon=True)

    def _run(self) -> None:
        key = self.key
        try:
            self.outcome = self._obtain()
            if self.outcome == "ready":
                # Built here, pulled, or found: the remote gets it unless it has
                # it (one HEAD), like `reflex-buildd build`.
                self._push()
        except BuildCancelledError:
            self.outcome = "cancelled"
            self._reporter.build_cancelled(key)
        except SourcesChangedError:
            self.outcome = "cancelled"  # the watcher sees the change and re-keys
        except BuildFailedError as exc:
            self.outcome = "failed"
            self._reporter.build_failed(key, exc)
        except ReflexBuilddError as exc:
            # A fault of the machine (no space, permissions): its one line,
            # path and cause; the daemon stays up for the next change.
            self.outcome = "failed"
            self._reporter.build_failed(key, BuildFailedError(str(exc), key=key))
        except Exception as exc:
            self.outcome = "failed"
            self._reporter.build_failed(key, BuildFailedError(repr(exc), key=key))

    def _obtain(self) -> str:
        """Pull, find or build the key: ``ready``, or ``cancelled`` by a newer change."""
        cache, key = self._cache, self.key
        lock = FileLock(str(cache.lock_path(key)))
        started = time.monotonic()
        lookup = remote_lookup(cache, key, self._settings.remote_tier)
        looked_up = False
        # Outside the key's lock: a pull takes it itself.
        if lookup is not None and cache.open(key) is None and lookup(None) is not None:
            self._reporter.pulled(key, time.monotonic() - started)
            # Not in the local cache: a miss there, which the remote served.
            looked_up = True
            record_lookup(cache, key, hit=False, project=self._project.root)
        while not self.cancel.is_set():
            if cache.open(key) is not None:
                if not looked_up:
                    # An edit undone, a branch switched back: say so, or
                    # the log would end at "-> key ..." as if stuck.
                    record_lookup(cache, key, hit=True, project=self._project.root)
                    self._reporter.already_built(key)
                return "ready"
            if not looked_up:
                looked_up = True
                record_lookup(cache, key, hit=False, project=self._project.root)
            try:
                lock.acquire(timeout=0.25)
            except Timeout:
                continue  # a host or CLI builds it: wait for its artifact
            try:
                if cache.open(key) is None:
                    self._build(started)
                return "ready"
            finally:
                lock.release()
        return "cancelled"

    def _build(self, started: float) -> None:
        """Build the key here (its lock held), then the automatic gc."""
        key, cache = self.key, self._cache
        self._reporter.build_started(key)
        run_build(
            self._project,
            cache,
            key=key,
            inputs=self.inputs,
            settings=self._settings,
            cancel=self.cancel,
            progress=lambda phase: self._reporter.phase(key, phase),
        )
        self._reporter.build_done(key, time.monotonic() - started)
        # The default cap (REFLEX_BUILDD_GC_MAX_SIZE): a cache
        # fed by a daemon must not grow without bound.
        auto_gc(cache, self._settings)

    def _push(self) -> None:
        from .push import push_artifact

        artifact = self._cache.open(self.key)
        remote = self._settings.remote_tier
        if remote is None or artifact is None or remote.trust.push_refusal():
            return  # no remote, or a verifying machine (said once, at start)
        try:
            report = push_artifact(self._cache, artifact, remote)
        except ReflexBuilddError as exc:  # the build stands; the next build pushes again
            self._reporter.error(f"push of {self.key} failed: {exc}")
            return
        self._reporter.pushed(report.summary())


def _acquire_daemon_lock(cache: Cache, project: Project) -> FileLock:
    path = daemon_lock_path(cache, project.root)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        other = read_daemon(cache, project.root)
        who = f"pid {other.pid} on {other.host}" if other else "another process"
        raise DaemonAlreadyRunningError(
            f"a daemon ({who}) already watches {project.root} with cache {cache.root}"
        ) from None
    return lock


def _lost(job: _Job, cache: Cache) -> bool:
    """Whether the artifact this job published is gone (quarantined or evicted)."""
    return (
        not job.thread.is_alive()
        and job.last_outcome == "ready"
        and not cache.has_manifest(job.key)
    )


def _maybe_start(
    project: Project,
    cache: Cache,
    options: DaemonOptions,
    reporter: Reporter,
    job: _Job | None,
    changed: set[str],
) -> _Job | None:
    """Re-key; if the key is new, cancel the running build and start the new one."""
    try:
        key, inputs = compute_key(
            project,
            settings=options.settings,
            cache_dir=cache.root,
            extra_inputs=options.extra_inputs,
            extra_env=options.extra_env,
        )
    except ReflexBuilddError as exc:
        reporter.error(f"cannot key {project.root}: {exc}")
        return job
    if job is not None and job.key == key and not _lost(job, cache):
        if changed:
            reporter.unchanged(sorted(changed))
        return job
    if job is not None and job.thread.is_alive():
        job.cancel.set()  # superseded: the newer key wins
        job.thread.join(timeout=30)
    reporter.key_changed(key, sorted(changed))
    job = _Job(project, cache, key, inputs, reporter, options.settings)
    write_daemon(cache, project.root, key=key, state="building", inputs=inputs.to_json())
    job.thread.start()
    return job


def run_daemon(
    project: Project,
    cache: Cache,
    *,
    stop: threading.Event,
    options: DaemonOptions,
    reporter: Reporter | None = None,
) -> None:
    """Keep the cache current for ``project`` until ``stop`` is set.

    Raises:
        DaemonAlreadyRunningError: If another daemon watches this project and cache.
    """
    reporter = reporter or Reporter()
    cache.ensure()
    daemon_lock = _acquire_daemon_lock(cache, project)
    watcher = ChangeWatcher(
        project.root,
        poll=options.settings.poll,
        debounce=options.debounce,
        ignored_dirs=frozenset({cache.root.name}),
    )
    job: _Job | None = None
    try:
        watcher.start()
        reporter.started(project, cache, polling=watcher.polling)
        remote = options.settings.remote_tier
        if remote is not None and (refusal := remote.trust.push_refusal()):
            reporter.error(f"builds are not pushed: {refusal}")
        changed: set[str] = set()
        need_key = True
        while not stop.is_set():
            if need_key:
                job = _maybe_start(project, cache, options, reporter, job, changed)
            batch = watcher.next_batch(stop, timeout=1.0)
            if job is not None and not job.thread.is_alive() and not job.recorded:
                write_daemon(
                    cache, project.root, key=job.key, state=job.outcome, inputs=job.inputs.to_json()
                )
                job.recorded = True
                job.last_outcome = job.outcome
            # Events are hints; only a new key means a new build (or the
            # current key's artifact vanishing: verify quarantined it, or
            # someone's gc evicted it).
            need_key = batch is not None or (job is not None and _lost(job, cache))
            changed = batch or set()
    finally:
        if job is not None and job.thread.is_alive():
            job.cancel.set()
            job.thread.join(timeout=30)
        watcher.stop()
        # A clean stop: no record left for `status` to list as a dead daemon.
        clear_daemon(cache, project.root)
        daemon_lock.release()
        reporter.stopped()


def daemon_lock_path(cache: Cache, root: Path) -> Path:
    """Where the one-daemon-per-project lock lives (for tools and tests)."""
    return cache.daemon_lock_path(project_id(root))
