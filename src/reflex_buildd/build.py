"""One prefix-independent build of a project, and the key-level cache around it.

The build runs Reflex's own ``reflex export`` in a subprocess:

- from a **snapshot** of the input files (``tmp/<id>/src``), so the user's tree
  is never written to (``reflex export`` drops ``reflex.lock/``,
  ``requirements.txt`` and ``uploaded_files/`` into its cwd) and the inputs are
  pinned for the whole build: the result is exactly the build of the key's
  inputs, even if the user saves while it runs;
- with ``.web`` in a per-project warm workspace in the cache
  (``REFLEX_WEB_WORKDIR``), so ``node_modules`` survives between builds;
- with ``frontend_path`` set to the sentinel and our plugin added through
  ``REFLEX_EXTRA_PLUGINS``: no edit to ``rxconfig.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import blake3
from filelock import FileLock

from reflex_buildd_client.errors import BuildFailedError
from reflex_buildd_client.keys import KeyInputs
from reflex_buildd_client.project import Project
from reflex_buildd_client.rewrite import SENTINEL
from reflex_buildd_client.runtime import resolve_runtime
from reflex_buildd_client.sources import compute_key
from reflex_buildd_client.store import Artifact, Cache

from .publish import publish

__all__ = ["BuildOutcome", "ensure_built", "run_build"]

PLUGIN = "reflex_buildd.plugin.BuilddPlugin"
# Written by Reflex for the sentinel path itself: a duplicate of index.html
# that would be served at "<prefix>/__RXBUILDD_PREFIX__".
_JUNK = (SENTINEL.lstrip("/") + ".html", SENTINEL.lstrip("/") + ".html.gz")
_LOG_TAIL_LINES = 40


@dataclass(frozen=True)
class BuildOutcome:
    """What :func:`ensure_built` did."""

    key: str
    artifact: Artifact
    built: bool
    seconds: float


class SourcesChangedError(BuildFailedError):
    """An input changed between keying and snapshotting."""


def _project_id(project: Project) -> str:
    return blake3.blake3(str(project.root).encode()).hexdigest()[:16]


def _snapshot(project: Project, inputs: KeyInputs, dest: Path) -> None:
    """Copy the input files to ``dest``, checking each against its digest.

    Raises:
        BuildFailedError: If a file changed since it was keyed (the caller
            re-keys and tries again rather than build a key from other bytes).
    """
    for rel, digest in inputs.files.items():
        data = (project.root / rel).read_bytes()
        if blake3.blake3(data).hexdigest() != digest:
            raise SourcesChangedError(f"{rel} changed while the build started")
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def _tail(log: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _build_env(web_dir: Path, scratch: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(resolve_runtime().env)
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
    # A stale REFLEX_APP_NAME or skip flag from the caller must not leak in.
    env.pop("__REFLEX_SKIP_COMPILE", None)
    return env


def _collect(web_dir: Path, staging: Path) -> list[str]:
    """Move the export's output into the artifact layout; return its routes."""
    client = web_dir / "build" / "client" / SENTINEL.strip("/")
    if not (client / "index.html").is_file():
        raise BuildFailedError(f"the export produced no {client}/index.html")
    shutil.copytree(client, staging / "public")
    for junk in _JUNK:
        (staging / "public" / junk).unlink(missing_ok=True)
    shutil.copytree(web_dir / "backend", staging / "web" / "backend")
    routes_file = web_dir / "routes.json"
    if routes_file.is_file():
        return [str(r) for r in json.loads(routes_file.read_text())]
    return []


def run_build(project: Project, cache: Cache, *, key: str, inputs: KeyInputs) -> Artifact:
    """Build ``project`` (whose inputs are ``inputs``) and publish it as ``key``.

    The caller holds the key's lock.

    Raises:
        BuildFailedError: If the export fails; the artifact is not published and
            the log stays at ``cache.log_path(key)``.
    """
    cache.ensure()
    scratch = cache.tmp_dir() / f"build-{key[:12]}-{uuid.uuid4().hex[:8]}"
    src, staging = scratch / "src", scratch / "artifact"
    log = cache.log_path(key)
    workspace = cache.work_dir(_project_id(project))
    workspace.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        _snapshot(project, inputs, src)
        staging.mkdir(parents=True)
        # One build at a time per workspace: two keys of one project may be
        # built at once by different processes, and they share node_modules.
        with FileLock(str(workspace) + ".lock"), log.open("wb") as out:
            web_dir = workspace / "web"
            out.write(f"reflex-buildd: building {key} from {project.root}\n".encode())
            out.flush()
            proc = subprocess.run(
                [sys.executable, "-m", "reflex", "export", "--frontend-only", "--no-zip"],
                cwd=src,
                env=_build_env(web_dir, scratch),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
            if proc.returncode != 0:
                raise BuildFailedError(
                    f"build of {key} failed (reflex export exited {proc.returncode}); "
                    f"log: {log}",
                    key=key,
                    log_tail=_tail(log),
                )
            routes = _collect(web_dir, staging)
        runtime = resolve_runtime()
        path = publish(
            cache,
            staging,
            key=key,
            inputs=inputs,
            project={"root": str(project.root), "app_name": project.app_name},
            build={
                "reflex": metadata.version("reflex"),
                "js_runtime": runtime.identity,
                "seconds": round(time.monotonic() - started, 3),
                "python": sys.version.split()[0],
            },
            routes=routes,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    artifact = cache.open(key)
    assert artifact is not None, path  # we just published it
    return artifact


def ensure_built(project: Project, cache: Cache, *, attempts: int = 3) -> BuildOutcome:
    """Return the artifact for the project's current sources, building it if missing.

    At most one process builds a key: the others block on its lock and then
    find the artifact.
    """
    started = time.monotonic()
    cache.ensure()
    for attempt in range(attempts):
        key, inputs = compute_key(project)
        if (artifact := cache.open(key)) is not None:
            return BuildOutcome(key, artifact, False, time.monotonic() - started)
        with FileLock(str(cache.lock_path(key))):
            if (artifact := cache.open(key)) is not None:
                return BuildOutcome(key, artifact, False, time.monotonic() - started)
            try:
                artifact = run_build(project, cache, key=key, inputs=inputs)
            except SourcesChangedError:
                if attempt == attempts - 1:
                    raise
                continue
            return BuildOutcome(key, artifact, True, time.monotonic() - started)
    raise AssertionError("unreachable")
