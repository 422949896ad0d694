"""One prefix-independent build of a project, and the key-level cache around it.

The build runs Reflex's own ``reflex export`` in a subprocess:

- from a **snapshot** of the input files (``tmp/<id>/src``), so the user's tree
  is never written to (``reflex export`` drops ``reflex.lock/``,
  ``requirements.txt`` and ``uploaded_files/`` into its cwd) and the inputs are
  pinned for the whole build: the result is exactly the build of the key's
  inputs, even if the user saves while it runs, so it can never be published
  under a key that does not describe it;
- with ``.web`` in a per-project warm workspace in the cache
  (``REFLEX_WEB_WORKDIR``), so ``node_modules`` survives between builds, and
  nothing else does: a warm build publishes what a fresh workspace would
  (:mod:`.workspace`);
- with ``frontend_path`` set to the sentinel and our plugin added through
  ``REFLEX_EXTRA_PLUGINS``: no edit to ``rxconfig.py``;
- in its own process group, with a parent-death signal: if the builder is
  killed (even with SIGKILL) its export dies too; its bun and node children,
  which outlive it, are found by the tenant token in their environment and
  killed by the next build before it starts (:mod:`.workspace`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import blake3

from reflex_buildd_client.cache.locks import lock_held
from reflex_buildd_client.cache.scratch import owner_of
from reflex_buildd_client.cache.store import Artifact, Cache
from reflex_buildd_client.children import dies_with_parent
from reflex_buildd_client.errors import (
    BuildFailedError,
    CacheIOError,
    InputReadError,
    ReflexBuilddError,
)
from reflex_buildd_client.inputs.runtime import JSRuntime, resolve_runtime
from reflex_buildd_client.inputs.sources import compute_key
from reflex_buildd_client.keys.schema import KeyInputs
from reflex_buildd_client.project import Project, project_id
from reflex_buildd_client.remote.pull import remote_lookup
from reflex_buildd_client.serve.rewrite import SENTINEL
from reflex_buildd_client.settings import Settings, StartupPolicy
from reflex_buildd_client.startup.demand import Demand
from reflex_buildd_client.startup.wait import obtain

from .buildlog import PhaseTracker, clean, error_line, error_tail, user_frame
from .doctor import warn_escapes
from .progress import LoggedProgress, Phase
from .publish import publish
from .records import BuildRecords
from .workspace import Workspace

__all__ = [
    "BuildCancelledError",
    "BuildOutcome",
    "SourcesChangedError",
    "ensure_built",
    "export_in",
    "project_workspace",
    "run_build",
    "snapshot_inputs",
    "workspace_facts",
]

logger = logging.getLogger("reflex_buildd")

PLUGIN = "reflex_buildd.plugin.BuilddPlugin"
# Written by Reflex for the sentinel path itself: a duplicate of index.html
# that would be served at "<prefix>/__RXBUILDD_PREFIX__".
_JUNK = (SENTINEL.lstrip("/") + ".html", SENTINEL.lstrip("/") + ".html.gz")
_LOG_TAIL_LINES = 40


class SourcesChangedError(BuildFailedError):
    """An input changed between keying and snapshotting (re-key and retry)."""


class BuildCancelledError(ReflexBuilddError, RuntimeError):
    """A newer change superseded the build; nothing was published."""


@dataclass(frozen=True)
class BuildOutcome:
    """What :func:`ensure_built` did."""

    key: str
    artifact: Artifact
    built: bool
    seconds: float


def snapshot_inputs(project: Project, inputs: KeyInputs, dest: Path) -> None:
    """Copy the input files to ``dest``, checking each against its digest.

    Raises:
        SourcesChangedError: If an input changed or vanished since keying.
        InputReadError: If an input cannot be read (permissions, I/O).
    """
    for rel, digest in inputs.files.items():
        try:
            data = (project.root / rel).read_bytes()
        except FileNotFoundError:
            raise SourcesChangedError(f"{rel} was removed while the build started") from None
        except OSError as exc:
            raise InputReadError.wrap(exc, project.root / rel) from exc
        if blake3.blake3(data).hexdigest() != digest:
            raise SourcesChangedError(f"{rel} changed while the build started")
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def _clean_log(log: Path, src: Path, project: Project) -> str:
    """Rewrite the log readable and pointing at the project; return its text."""
    try:
        text = clean(log.read_text(errors="replace"), snapshot=str(src), project=str(project.root))
    except OSError:
        return ""
    with contextlib.suppress(OSError):
        log.write_text(text)
    return text


def _failure_cause(text: str, project: Project) -> str:
    """The cause of a failed build, from its (clean) log or its tail: the user's
    frame with its error, else the error the log ends with; "" if none is named."""
    frame = user_frame(text, project.root)
    if frame is not None:
        return f" at {frame}"
    error = error_line(text)
    return f": {error.rstrip('.')}" if error else ""


def _failure_message(key: str, code: int, log: Path, text: str, project: Project) -> str:
    """One line: the key, the exit code and the cause (never only an exit code)."""
    return f"build of {key} failed (reflex export exited {code}){_failure_cause(text, project)}; log: {log}"


def _build_env(web_dir: Path, scratch: Path, runtime: JSRuntime) -> dict[str, str]:
    env = dict(os.environ)
    env.update(runtime.env)
    extra = [p for p in env.get("REFLEX_EXTRA_PLUGINS", "").split(",") if p.strip()]
    env.update(
        {
            "REFLEX_FRONTEND_PATH": SENTINEL,
            "REFLEX_WEB_WORKDIR": str(web_dir),
            "REFLEX_EXTRA_PLUGINS": ",".join([*extra, PLUGIN]),
            # Keep everything the export writes at run time out of the user's tree.
            "REFLEX_UPLOADED_FILES_DIR": str(scratch / "uploaded_files"),
            "REFLEX_STATES_WORKDIR": str(scratch / "states"),
            "REFLEX_TELEMETRY_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "NO_COLOR": "1",
            "TERM": "dumb",
        }
    )
    # A host's skip-compile and backend-only flags (set for an in-process
    # backend) must not leak into a build.
    env.pop("__REFLEX_SKIP_COMPILE", None)
    env.pop("REFLEX_BACKEND_ONLY", None)
    return env


def _copy_tree(src: Path, dst: Path) -> None:
    """``shutil.copytree`` that stops at the first ``OSError`` and raises it as is.

    copytree gathers per-file errors into one ``shutil.Error`` without an
    errno; a full disk must surface as ENOSPC with the path that failed.
    """
    for dirpath, _dirs, files in os.walk(src, followlinks=True):
        target = dst / os.path.relpath(dirpath, src)
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            shutil.copy2(os.path.join(dirpath, name), target / name)


def _collect(web_dir: Path, staging: Path) -> list[str]:
    """Move the export's output into the artifact layout; return its routes."""
    client = web_dir / "build" / "client" / SENTINEL.strip("/")
    if not (client / "index.html").is_file():
        raise BuildFailedError(f"the export produced no {client}/index.html")
    _copy_tree(client, Artifact.staged_public_dir(staging))
    for junk in _JUNK:
        (Artifact.staged_public_dir(staging) / junk).unlink(missing_ok=True)
    _copy_tree(web_dir / "backend", Artifact.staged_backend_dir(staging))
    routes_file = web_dir / "routes.json"
    if routes_file.is_file():
        return [str(r) for r in json.loads(routes_file.read_text())]
    return []


def _workspace_busy(workspace: Workspace) -> bool:
    return lock_held(workspace.lock)


def _clean_stale_scratch(cache: Cache) -> None:
    """Remove scratch dirs of dead builders of this machine (never a live one's)."""
    try:
        entries = list(cache.tmp_dir().iterdir())
    except FileNotFoundError:
        return
    for entry in entries:
        owner = owner_of(entry.name)
        if owner is not None and owner.kind == "build" and owner.dead():
            shutil.rmtree(entry, ignore_errors=True)


def _run_export(
    src: Path,
    env: dict[str, str],
    log: Path,
    cancel: threading.Event | None,
    progress: Phase,
) -> int:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reflex", "export", "--frontend-only", "--no-zip"],
            cwd=src,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=dies_with_parent(signal.SIGKILL),
        )
        phases = PhaseTracker(log)
        try:
            while True:
                try:
                    return proc.wait(timeout=0.1)
                except subprocess.TimeoutExpired:
                    if (phase := phases.poll()) is not None:
                        progress(phase)
                    if cancel is not None and cancel.is_set():
                        raise BuildCancelledError("superseded by a newer change") from None
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def project_workspace(cache: Cache, project: Project) -> Workspace:
    """The warm workspace of ``project`` in ``cache``."""
    pid = project_id(project.root)
    return Workspace(
        web_dir=cache.work_web_dir(pid),
        record=cache.work_record_path(pid),
        lock=cache.work_lock(pid),
    )


def workspace_facts(runtime: JSRuntime) -> dict[str, str]:
    """What an installed ``node_modules`` depends on besides the lockfiles."""
    return {"reflex": metadata.version("reflex"), "js_runtime": runtime.identity}


@dataclass(frozen=True)
class ExportJob:
    """One export: the snapshot ``src`` of ``project``'s inputs built as ``key`` into ``staging``.

    Attributes:
        project: The project (named in the log and its messages).
        key: The key being built.
        runtime: The JS runtime the key names.
        src: The snapshot of the inputs (the export's working directory).
        staging: Where the artifact is assembled.
        log: The build's log.
    """

    project: Project
    key: str
    runtime: JSRuntime
    src: Path
    staging: Path
    log: Path


def export_in(
    workspace: Workspace,
    job: ExportJob,
    *,
    progress: Phase,
    cancel: threading.Event | None = None,
) -> list[str]:
    """Export ``job.src`` in ``workspace`` into ``job.staging``; return the routes.

    One build at a time per workspace: two keys of one project may be built at
    once by different processes, and they share ``node_modules``.

    Raises:
        BuildFailedError: If the export fails (``exit_code`` says how).
        BuildCancelledError: If ``cancel`` was set.
    """
    if _workspace_busy(workspace):
        progress("waiting for another build of this project to finish")
    with workspace.occupy(facts=workspace_facts(job.runtime)) as tenancy:
        with job.log.open("a") as out:
            out.writelines(f"reflex-buildd: {note}\n" for note in tenancy.notes)
        progress("starting reflex export")
        env = {**_build_env(workspace.web_dir, job.src.parent, job.runtime), **tenancy.env}
        code = _run_export(job.src, env, job.log, cancel, progress)
        text = _clean_log(job.log, job.src, job.project)
        if code != 0:
            raise BuildFailedError(
                _failure_message(job.key, code, job.log, text, job.project),
                key=job.key,
                log_tail=error_tail(text, _LOG_TAIL_LINES),
                exit_code=code,
            )
        progress("publishing")
        routes = _collect(workspace.web_dir, job.staging)
        tenancy.succeeded = True
    return routes


def run_build(
    project: Project,
    cache: Cache,
    *,
    key: str,
    inputs: KeyInputs,
    settings: Settings,
    cancel: threading.Event | None = None,
    progress: Phase | None = None,
) -> Artifact:
    """Build ``project`` (whose inputs are ``inputs``) and publish it as ``key``.

    The caller holds the key's lock. The status record says ``building`` while
    this runs, ``failed`` (with the log's tail) if it fails, and is removed
    once the artifact is published (:class:`.records.BuildRecords`).

    ``progress`` is told each phase of the build as it starts; without it the
    phases and the elapsed time go to the ``reflex_buildd`` logger every few
    seconds (a host that builds at startup would be silent otherwise).

    Raises:
        BuildFailedError: If the export fails; nothing is published and the
            log stays at ``cache.log_path(key)``.
        BuildCancelledError: If ``cancel`` was set; nothing is published.
        SourcesChangedError: If an input changed after keying.
        InputReadError: If an input cannot be read; nothing is recorded.
        CacheIOError: If the cache cannot be written (no space, permissions);
            the failure is recorded when there is room for the record, and
            the ``building`` record removed otherwise.
    """
    # The runtime the key names (not whatever is installed): a wrong one is a
    # clear error naming the version to install, before anything is recorded.
    runtime = resolve_runtime(inputs.js_runtime, settings=settings)
    cache.ensure()
    _clean_stale_scratch(cache)
    scratch = cache.scratch_path("build", key)
    job = ExportJob(
        project, key, runtime, scratch / "src", scratch / "artifact", cache.log_path(key)
    )
    records = BuildRecords(cache, key, project, job.log)
    try:
        with _told(progress, f"building {key} ({project.root.name})") as told:
            artifact = _build_and_publish(cache, job, inputs, records, told, cancel)
    except InputReadError:
        # Not the build's fault: nothing to record against the key.
        records.forget()
        raise
    except OSError as exc:
        fault = CacheIOError.wrap(exc)
        # The scratch goes first: on a full disk that is what frees the room
        # the failure record needs.
        shutil.rmtree(scratch, ignore_errors=True)
        records.fault(fault)
        raise fault from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _warn_escapes(artifact, project)
    return artifact


def _warn_escapes(artifact: Artifact, project: Project) -> None:
    """Root-absolute URLs the build could not prefix: say so once, on stderr.

    Only a warning: an artifact moved away meanwhile (quarantined, evicted after our lock)
    must not turn a published build into a failed one.
    """
    try:
        warn_escapes(artifact, project.root)
    except (OSError, ReflexBuilddError) as exc:
        logger.warning("reflex-buildd: could not check %s for escaping URLs: %s", artifact.key, exc)


@contextlib.contextmanager
def _told(progress: Phase | None, what: str) -> Iterator[Phase]:
    """``progress``, or phases logged with the elapsed time while the block runs."""
    if progress is not None:
        yield progress
        return
    logged = LoggedProgress(what)
    logged.start()
    try:
        yield logged.set_phase
    finally:
        logged.stop()


def _build_and_publish(
    cache: Cache,
    job: ExportJob,
    inputs: KeyInputs,
    records: BuildRecords,
    progress: Phase,
    cancel: threading.Event | None,
) -> Artifact:
    """Snapshot the inputs, export them in the project's warm workspace, publish the result."""
    started = time.monotonic()
    project = job.project
    progress(f"copying {len(inputs.files)} input files")
    snapshot_inputs(project, inputs, job.src)
    job.staging.mkdir(parents=True)
    job.log.write_bytes(f"reflex-buildd: building {job.key} from {project.root}\n".encode())
    records.started()
    try:
        workspace = project_workspace(cache, project)
        routes = export_in(workspace, job, progress=records.sharing(progress), cancel=cancel)
    except BuildCancelledError:
        records.cancelled()
        raise
    except BuildFailedError as exc:
        # Hosts waiting for the key name the cause in their one line (startup/wait.py).
        records.failed(exc, cause=_failure_cause(exc.log_tail, job.project))
        raise
    seconds = round(time.monotonic() - started, 3)
    artifact = publish(
        cache,
        job.staging,
        key=job.key,
        inputs=inputs,
        project={"root": str(project.root), "app_name": project.app_name},
        build={
            "reflex": metadata.version("reflex"),
            "js_runtime": job.runtime.identity,
            "seconds": seconds,
            "python": sys.version.split()[0],
        },
        routes=routes,
    )
    records.published(seconds)
    return artifact


def ensure_built(
    project: Project,
    cache: Cache,
    *,
    settings: Settings,
    extra_inputs: tuple[str, ...] = (),
    extra_env: tuple[str, ...] = (),
    attempts: int = 3,
    progress: Phase | None = None,
) -> BuildOutcome:
    """Return the artifact for the project's current sources, building it if missing.

    Any number of processes may call this at once for one key: one builds, the
    others wait for it (and fail with its error if it fails), however long it takes. A
    failure recorded before the call is built over (an explicit build retries). With a
    remote in ``settings``, a local miss is looked up there before building (pushing is
    the caller's). ``extra_inputs`` and ``extra_env`` are the command's ``--input`` globs
    and ``--input-env`` names. ``progress`` is told each phase (keying, looking up, each
    phase of a build).
    """
    started = time.monotonic()
    say = progress or (lambda _phase: None)
    for attempt in range(attempts):
        say("computing the key")
        key, inputs = compute_key(
            project,
            settings=settings,
            cache_dir=cache.root,
            extra_inputs=extra_inputs,
            extra_env=extra_env,
        )
        build = functools.partial(
            run_build, project, cache, key=key, inputs=inputs, settings=settings, progress=progress
        )
        say(f"key {key[:12]}: looking it up in the cache")
        demand = Demand(
            cache,
            key,
            policy=StartupPolicy.BUILD,
            timeout=None,
            build=build,
            remote=remote_lookup(cache, key, settings.remote_tier),
            project=project.root,
            retry_failed=True,
        )
        try:
            artifact, built = obtain(demand)
        except SourcesChangedError:
            if attempt == attempts - 1:
                raise
            continue
        return BuildOutcome(key, artifact, built, time.monotonic() - started)
    raise AssertionError("unreachable")
