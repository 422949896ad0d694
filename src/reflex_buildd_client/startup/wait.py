"""Wait until the artifact of a key exists: the startup protocol of every process.

Hosts, CLIs and daemons all go through :func:`obtain`. Exactly one process
builds a key: whoever takes the key's lock (non-blocking) builds; everyone
else polls for the manifest, which also works where ``flock`` does not (NFS).
Polling the status record as well makes failures fast: a recorded failure is
seen within one poll interval, not after the timeout.

If the builder dies, its lock goes with it and its ``building`` record is
recognised as dead, so the next poller takes over.

With a remote tier, a local miss that nobody here is building looks there
first (the ``remote`` hook, :mod:`reflex_buildd_client.remote.pull`): a fault costs one log line and the
local protocol goes on; the remote never holds startup past its timeout.
"""

from __future__ import annotations

import logging
import shlex
import time
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock, Timeout

from .. import metrics
from ..cache.status import BuildState, KeyStatus, read_daemon, read_status, record_lookup
from ..cache.store import Artifact, Cache
from ..errors import ArtifactMissingError, BuildFailedError, ReadOnlyCacheError, WaitTimeoutError
from ..keys.diff import diff_inputs
from ..keys.schema import KeyInputs
from ..settings import StartupPolicy
from .demand import Demand

__all__ = ["POLL_INTERVAL", "build_command", "explain_daemon_mismatch", "obtain"]

logger = logging.getLogger("reflex_buildd")

POLL_INTERVAL = 0.25


def _failure(key: str, record: dict[str, object]) -> BuildFailedError:
    tail = str(record.get("tail", ""))
    # The builder's one-line cause (" at <file, line>: <error>" or ": <error>").
    cause = str(record.get("cause") or "")
    return BuildFailedError(
        f"the build of {key} failed (by pid {record.get('pid')} on {record.get('host')}, "
        f"exit code {record.get('exit_code')}){cause}; log: {record.get('log')}\n{tail}",
        key=key,
        log_tail=tail,
    )


def explain_daemon_mismatch(cache: Cache, root: Path, key: str, inputs: KeyInputs) -> str:
    """Why the daemon of the project at ``root`` has not built ``key``: its key differs, and how."""
    daemon = read_daemon(cache, root)
    if daemon is None or daemon.alive is False:
        return f"no daemon is watching {root}"
    if daemon.key == key:
        return f"the daemon (pid {daemon.pid}) is on this key ({daemon.state})"
    try:
        why = diff_inputs(KeyInputs.from_json(daemon.inputs), inputs).summary()
    except TypeError as exc:  # a record anyone who can write the cache may have written
        why = f"its record's inputs are unreadable ({exc})"
    return (
        f"the daemon (pid {daemon.pid} on {daemon.host}) has key {daemon.key}, this process "
        f"computes {key}: {why}"
    )


def obtain(demand: Demand) -> tuple[Artifact, bool]:
    """Return the artifact of ``demand.key``, building or waiting as its policy says.

    Returns:
        The artifact and whether this call built it.

    Raises:
        BuildFailedError: The build failed (here or in another process).
        ArtifactMissingError: Policy ``fail`` and no artifact.
        WaitTimeoutError: Nothing arrived within the timeout.
        UntrustedArtifactError: The remote's artifact was refused (``remote``).
    """
    cache, key, timeout, remote = demand.cache, demand.key, demand.timeout, demand.remote
    started = time.time()
    deadline = None if timeout is None else time.monotonic() + timeout
    said = ""  # what the last wait line said: a line only when it changes
    since = started if demand.retry_failed else None
    looked_up = waited = False
    while True:
        status = _current(cache, key, since=since)
        if not looked_up:
            looked_up = True
            record_lookup(cache, key, hit=isinstance(status, Artifact), project=demand.project)
        if isinstance(status, Artifact):
            if waited:  # another process built it while this one waited
                metrics.waited(time.time() - started)
            return status, False
        if remote is not None and status.state is not BuildState.BUILDING:
            lookup, remote = remote, None  # once: a miss stays a miss for this call
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if (pulled := lookup(left)) is not None:
                return pulled, False
            continue  # the pull took time: look at the key's state again
        if status.state is not BuildState.BUILDING:
            if (built := _nobody_builds(demand, since=since)) is not None:
                return built
        now = time.monotonic()
        waiting_for = _waiting_for(status, demand.policy, demand.explain_missing)
        if waiting_for != said:
            said = waiting_for
            # Another process building the key is the expected case (a host's
            # other workers, a daemon): information. Nobody building it is not.
            level = logging.INFO if status.state is BuildState.BUILDING else logging.WARNING
            logger.log(
                level,
                "reflex-buildd: waiting for key %s (%.0fs so far): %s",
                key,
                time.time() - started,
                waiting_for,
            )
        if deadline is not None and now >= deadline:
            raise _timed_out(demand, status)
        waited = True
        time.sleep(POLL_INTERVAL)


def _nobody_builds(demand: Demand, *, since: float | None) -> tuple[Artifact, bool] | None:
    """Act on a key nobody is building, by the policy: fail, build it, or go on waiting.

    Returns:
        What a build here made, or None to wait a poll (someone took the lock first, or
        policy ``wait``).
    """
    policy, cache, key = demand.policy, demand.cache, demand.key
    if policy is StartupPolicy.FAIL:
        raise _missing(cache, key, demand.explain_missing, demand.project)
    if policy is StartupPolicy.BUILD and demand.build is not None:
        return _build_if_free(demand, since=since)
    if policy is StartupPolicy.WAIT and demand.give_up is not None:
        if (why_stop := demand.give_up()) is not None:
            raise WaitTimeoutError(
                f"gave up waiting for key {key} in {cache.root}: {why_stop}", key=key
            )
    return None


def _timed_out(demand: Demand, status: KeyStatus) -> WaitTimeoutError:
    why = ""
    if status.state is not BuildState.BUILDING and demand.explain_missing is not None:
        why = f"; {demand.explain_missing()}"
    return WaitTimeoutError(
        f"gave up after {demand.timeout:.0f}s waiting for key {demand.key} in "
        f"{demand.cache.root} ({status.state.value}): nobody built it{why}",
        key=demand.key,
    )


def _current(cache: Cache, key: str, *, since: float | None) -> Artifact | KeyStatus:
    """The artifact if published, else the key's status; a failure is raised.

    The manifest is the whole answer: callers check the files (hosts read and
    verify them once, under a lease), so no stat per file here. A failure
    recorded before ``since`` is stale (an explicit build retries over it).
    """
    if (artifact := cache.published(key)) is not None:
        return artifact
    status = read_status(cache, key)
    if status.state is BuildState.FAILED:
        record = status.record or {}
        if since is None or float(record.get("time", 0)) >= since:
            raise _failure(key, record)
    return status


def _build_if_free(demand: Demand, *, since: float | None) -> tuple[Artifact, bool] | None:
    """Build the demanded key if its lock is free (None if another process holds it).

    Raises:
        ReadOnlyCacheError: The lock cannot be taken because the cache is not writable.
    """
    cache, key, build, project = demand.cache, demand.key, demand.build, demand.project
    assert build is not None  # the caller checked the policy
    lock = FileLock(str(cache.lock_path(key)))
    try:
        cache.ensure()
        lock.acquire(timeout=0)
    except Timeout:
        return None
    except OSError as exc:
        raise ReadOnlyCacheError(
            f"no artifact for key {key} in {cache.root}, and this process cannot build it "
            f"there ({exc.strerror}: {exc.filename}); build it where the cache is writable: "
            f"{build_command(cache, project)}",
            key=key,
        ) from exc
    try:
        # Again under the lock: the holder before us may have just finished or failed.
        status = _current(cache, key, since=since)
        if isinstance(status, Artifact):
            return status, False
        logger.info(
            "reflex-buildd: no artifact for key %s in %s: building it here (policy 'build')",
            key,
            cache.root,
        )
        return build(), True
    finally:
        lock.release()


def _missing(
    cache: Cache, key: str, explain_missing: Callable[[], str] | None, project: Path | None
) -> ArtifactMissingError:
    why = f"; {explain_missing()}" if explain_missing else ""
    return ArtifactMissingError(
        f"no artifact for key {key} in {cache.root} and the startup policy is 'fail'{why}; "
        f"build it with: {build_command(cache, project)}",
        key=key,
    )


def build_command(cache: Cache, project: Path | None) -> str:
    """The command that builds the key, ready to paste (the real project when known)."""
    where = shlex.quote(str(project)) if project is not None else "PROJECT"
    return f"reflex-buildd build {where} --cache-dir {shlex.quote(str(cache.root))}"


def _waiting_for(
    status: KeyStatus, policy: StartupPolicy, explain_missing: Callable[[], str] | None
) -> str:
    if status.state is BuildState.BUILDING:
        record = status.record or {}
        # The builder shares its phase in the record (reflex_buildd.build).
        phase = f", {record['phase']}" if record.get("phase") else ""
        return f"the build by pid {record.get('pid')} on {record.get('host')}{phase}"
    why = f": {explain_missing()}" if explain_missing is not None else ""
    return f"a daemon to build it{why}" if policy is StartupPolicy.WAIT else f"the build{why}"
