"""Why two keys differ: a readable diff of their recorded inputs.

The diff itself lives in :mod:`reflex_buildd_client.keys.diff` (hosts use it to
explain a mismatch with the daemon); :func:`render` is pure (diff in, text
out); :func:`find_manifest` and :func:`explain` read the cache.
"""

from __future__ import annotations

import time
from typing import Any

from reflex_buildd_client.cache.manifest import Manifest
from reflex_buildd_client.cache.store import Cache
from reflex_buildd_client.errors import ArtifactMissingError, CorruptArtifactError
from reflex_buildd_client.keys.diff import ABSENT, InputsDiff, diff_inputs
from reflex_buildd_client.keys.schema import KeyInputs
from reflex_buildd_client.project import Project

__all__ = [
    "InputsDiff",
    "diff_inputs",
    "diff_to_json",
    "explain",
    "explain_json",
    "find_manifest",
    "other_project",
    "render",
]


def _env_state(value: object) -> str:
    if value is ABSENT:
        return "not an input"
    if value is None:
        return "unset"
    return "set"


def _short(value: str | None) -> str:
    if value is None:
        return "(none)"
    return value[:12] if len(value) == 64 else value  # shorten digests only


def render(diff: InputsDiff, *, old_label: str, new_label: str) -> str:
    """The diff as text for a person: one section per kind of input."""
    lines = [f"comparing {old_label}", f"     with {new_label}"]
    if diff.empty:
        lines.append("no differences: the inputs, and so the keys, are the same")
        return "\n".join(lines) + "\n"
    if diff.schema:
        lines.append(
            f"key schema: {diff.schema[0]} -> {diff.schema[1]} "
            "(reflex-buildd changed how keys are computed; keys never match across schemas)"
        )
    n_files = len(diff.added) + len(diff.removed) + len(diff.changed) + len(diff.renamed)
    if n_files:
        lines.append(
            f"files: {len(diff.added)} added, {len(diff.removed)} removed, "
            f"{len(diff.changed)} changed, {len(diff.renamed)} renamed"
        )
        lines += [f"  + {rel}" for rel in diff.added]
        lines += [f"  - {rel}" for rel in diff.removed]
        lines += [f"  ~ {rel}" for rel in diff.changed]
        lines += [f"  > {a} -> {b}" for a, b in diff.renamed]
    if diff.versions:
        lines.append("versions:")
        for name, old, new in diff.versions:
            if old is None:
                lines.append(f"  + {name} {new}")
            elif new is None:
                lines.append(f"  - {name} {old}")
            else:
                lines.append(f"  ~ {name} {old} -> {new}")
    if diff.env:
        lines.append("environment (values are compared by digest, never shown):")
        for name, old_env, new_env in diff.env:
            before, after = _env_state(old_env), _env_state(new_env)
            if before == after == "set":
                lines.append(f"  ~ {name}: value changed")
            else:
                lines.append(f"  ~ {name}: {before} -> {after}")
    if diff.js_runtime:
        lines.append(f"js runtime: {diff.js_runtime[0] or '(none)'} -> {diff.js_runtime[1]}")
    if diff.settings:
        lines.append("build settings (reflex-buildd itself):")
        lines += [f"  ~ {n}: {_short(o)} -> {_short(v)}" for n, o, v in diff.settings]
    return "\n".join(lines) + "\n"


def _read_manifest(cache: Cache, key: str) -> Manifest | None:
    try:
        return cache.read_manifest(key)
    except CorruptArtifactError:
        return None


def find_manifest(cache: Cache, project: Project, against: str | None) -> Manifest:
    """The manifest to compare with: of key (or unique key prefix) ``against``,
    else of the most recent artifact of ``project`` in the cache.

    Raises:
        ArtifactMissingError: If there is no such artifact (or the prefix is ambiguous).
    """
    keys = cache.keys()
    if against:
        candidates = [key for key in keys if key.startswith(against)]
        found = [m for key in candidates if (m := _read_manifest(cache, key)) is not None]
        if len(found) != 1:
            why = "no artifact" if not found else f"{len(found)} artifacts"
            raise ArtifactMissingError(f"{why} in {cache.root} for key {against!r}", key=against)
        return found[0]
    best: Manifest | None = None
    for key in keys:
        manifest = _read_manifest(cache, key)
        if manifest is None or manifest.project.get("root") != str(project.root):
            continue
        if best is None or manifest.created > best.created:
            best = manifest
    if best is None:
        raise ArtifactMissingError(
            f"no artifact of {project.root} in {cache.root} to compare with; pass --against KEY",
            key="",
        )
    return best


def other_project(manifest: Manifest, project: Project) -> str | None:
    """The project ``manifest`` was built from, when it is not ``project``."""
    root = str(manifest.project.get("root") or "")
    return None if root == str(project.root) else root or "(unknown)"


def _age(created: float, now: float) -> str:
    seconds = max(0, int(now - created))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def explain(
    project: Project, cache: Cache, *, key: str, inputs: KeyInputs, against: str | None = None
) -> str:
    """Explain the difference between the current inputs and a cached artifact's.

    Raises:
        ArtifactMissingError: If there is nothing to compare with.
    """
    manifest = find_manifest(cache, project, against)
    old_label = f"{manifest.key} (built {_age(manifest.created, time.time())})"
    new_label = f"{key} (current sources of {project.root.name})"
    text = render(diff_inputs(manifest.inputs, inputs), old_label=old_label, new_label=new_label)
    if (other := other_project(manifest, project)) is not None:
        text = (
            f"note: {manifest.key[:12]} is an artifact of another project, {other}, not of "
            f"{project.root}: the differences below are between two projects\n{text}"
        )
    if manifest.key == key and against is None:
        text += "the most recent artifact is the current key: nothing to rebuild\n"
    return text


def diff_to_json(diff: InputsDiff) -> dict[str, Any]:
    """The diff as plain JSON data (env values by state only: set, unset, not an input)."""
    return {
        "same": diff.empty,
        "schema": list(diff.schema) if diff.schema else None,
        "files": {
            "added": diff.added,
            "removed": diff.removed,
            "changed": diff.changed,
            "renamed": [list(pair) for pair in diff.renamed],
        },
        "versions": [{"name": n, "old": o, "new": v} for n, o, v in diff.versions],
        "env": [
            {"name": n, "old": _env_state(o), "new": _env_state(v), "value_changed": o != v}
            for n, o, v in diff.env
        ],
        "js_runtime": list(diff.js_runtime) if diff.js_runtime else None,
        "settings": [{"name": n, "old": o, "new": v} for n, o, v in diff.settings],
    }


def explain_json(
    project: Project, cache: Cache, *, key: str, inputs: KeyInputs, against: str | None = None
) -> dict[str, Any]:
    """What :func:`explain` says, as data: both keys and their difference.

    Raises:
        ArtifactMissingError: If there is nothing to compare with.
    """
    manifest = find_manifest(cache, project, against)
    return {
        "project": str(project.root),
        "key": key,
        "against": manifest.key,
        "against_created": manifest.created,
        # Another project's artifact: every difference below is between two projects.
        "against_project": manifest.project.get("root"),
        "same_project": other_project(manifest, project) is None,
        "diff": diff_to_json(diff_inputs(manifest.inputs, inputs)),
    }
