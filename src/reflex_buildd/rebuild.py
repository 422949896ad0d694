"""``verify --rebuild``: build a key again in a fresh workspace and compare by digest.

A warm workspace may only ever save time: the files published from it must be
those a build in an empty workspace makes from the same inputs
(:mod:`.workspace` says how that is kept true). This module checks it for one
key: the project's current inputs must still have that key (the inputs are not
stored, only their digests), the fresh build runs in a scratch directory of its
own with its own ``node_modules``, publishes nothing, and its files are
compared with the artifact's manifest, path by path and digest by digest.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from typing import Any

from reflex_buildd_client.cache.manifest import FileEntry
from reflex_buildd_client.cache.store import Cache
from reflex_buildd_client.errors import ReflexBuilddError
from reflex_buildd_client.inputs.runtime import resolve_runtime
from reflex_buildd_client.inputs.sources import compute_key
from reflex_buildd_client.keys.schema import KeyInputs
from reflex_buildd_client.project import Project
from reflex_buildd_client.settings import Settings

from .build import ExportJob, ensure_built, export_in, snapshot_inputs
from .publish import describe_files
from .workspace import Workspace

__all__ = [
    "InputsMovedOnError",
    "RebuildReport",
    "compare_files",
    "rebuild_fresh",
    "verify_rebuild",
]


class InputsMovedOnError(ReflexBuilddError, ValueError):
    """The project's inputs no longer have the key to rebuild."""


@dataclass(frozen=True)
class RebuildReport:
    """How a fresh-workspace build of a key compares with its artifact."""

    key: str
    project: str
    files: int
    seconds: float
    only_published: list[str] = field(default_factory=list)
    only_fresh: list[str] = field(default_factory=list)
    differ: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the fresh build has exactly the artifact's files and bytes."""
        return not (self.only_published or self.only_fresh or self.differ)

    def to_json(self) -> dict[str, Any]:
        """The report as ``verify --rebuild --json`` prints it."""
        return {
            "key": self.key,
            "project": self.project,
            "ok": self.ok,
            "files": self.files,
            "seconds": round(self.seconds, 3),
            "only_published": self.only_published,
            "only_fresh": self.only_fresh,
            "differ": self.differ,
        }


def compare_files(
    published: dict[str, FileEntry], fresh: dict[str, FileEntry]
) -> tuple[list[str], list[str], list[str]]:
    """Paths only in ``published``, only in ``fresh``, and in both with other bytes."""
    only_published = sorted(set(published) - set(fresh))
    only_fresh = sorted(set(fresh) - set(published))
    differ = sorted(
        rel
        for rel in set(published) & set(fresh)
        if (published[rel].digest, published[rel].size) != (fresh[rel].digest, fresh[rel].size)
    )
    return only_published, only_fresh, differ


def rebuild_fresh(
    project: Project, cache: Cache, *, key: str, inputs: KeyInputs, settings: Settings
) -> dict[str, FileEntry]:
    """Build ``inputs`` in an empty workspace; return its files as a manifest would list them.

    Nothing is published; the scratch directory (workspace included) is removed.

    Raises:
        BuildFailedError: If the fresh build fails (its log's tail included).
    """
    cache.ensure()
    # A "build" scratch name: gc and the next builder clean it up if we die.
    scratch = cache.scratch_path("build", key)
    src, staging = scratch / "src", scratch / "artifact"
    try:
        snapshot_inputs(project, inputs, src)
        staging.mkdir(parents=True)
        log = scratch / "rebuild.log"
        log.write_text(f"reflex-buildd: rebuilding {key} in a fresh workspace\n")
        # An empty workspace of its own, inside this scratch directory.
        fresh = Workspace(
            web_dir=scratch / "fresh-web",
            record=scratch / "fresh-workspace.json",
            lock=scratch / "fresh-workspace.lock",
        )
        runtime = resolve_runtime(inputs.js_runtime, settings=settings)
        job = ExportJob(project, key, runtime, src, staging, log)
        export_in(fresh, job, progress=lambda _phase: None)
        return describe_files(staging)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def verify_rebuild(
    project: Project, cache: Cache, *, settings: Settings, key: str | None = None
) -> RebuildReport:
    """Compare the artifact of ``key`` (default: the current key) with a fresh build.

    The artifact is built first (in the warm workspace, as usual) if missing.

    Raises:
        InputsMovedOnError: If ``key`` is given and the project's inputs now
            have another key.
        BuildFailedError: If either build fails.
    """
    started = time.monotonic()
    current, inputs = compute_key(project, settings=settings, cache_dir=cache.root)
    if key is not None and key != current:
        raise InputsMovedOnError(
            f"cannot rebuild {key}: the inputs of {project.root} now have key {current} "
            f"(see: reflex-buildd explain {project.root} --against {key})"
        )
    artifact = ensure_built(project, cache, settings=settings).artifact
    if artifact.key != current:
        raise InputsMovedOnError(f"the inputs of {project.root} changed during the build")
    fresh = rebuild_fresh(project, cache, key=current, inputs=inputs, settings=settings)
    only_published, only_fresh, differ = compare_files(artifact.manifest.files, fresh)
    return RebuildReport(
        key=current,
        project=str(project.root),
        files=len(artifact.manifest.files),
        seconds=time.monotonic() - started,
        only_published=only_published,
        only_fresh=only_fresh,
        differ=differ,
    )
