"""Why two keys differ: a readable diff of their recorded inputs.

:func:`diff_inputs` and :func:`render` are pure (inputs in, text out);
:func:`find_manifest` and :func:`explain` read the cache.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from reflex_buildd_client.errors import ArtifactMissingError, CorruptArtifactError
from reflex_buildd_client.keys import KeyInputs
from reflex_buildd_client.project import Project
from reflex_buildd_client.store import MANIFEST_NAME, Cache, Manifest

__all__ = ["InputsDiff", "diff_inputs", "explain", "find_manifest", "render"]

# An env entry is one of: not an input (absent), declared but unset (None), or
# set (the digest of its value).
_ABSENT = object()

Change = tuple[str, "str | None", "str | None"]


@dataclass(frozen=True)
class InputsDiff:
    """What differs between an old and a new set of inputs (old -> new)."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    versions: list[Change] = field(default_factory=list)
    env: list[tuple[str, object, object]] = field(default_factory=list)
    js_runtime: tuple[str, str] | None = None
    settings: list[Change] = field(default_factory=list)
    schema: tuple[int, int] | None = None

    @property
    def empty(self) -> bool:
        """True when the inputs are the same (so are the keys)."""
        return not (
            self.added or self.removed or self.changed or self.renamed or self.versions
            or self.env or self.js_runtime or self.settings or self.schema
        )  # fmt: skip


def _mapping_changes(old: dict[str, str], new: dict[str, str]) -> list[Change]:
    return [
        (name, old.get(name), new.get(name))
        for name in sorted(old.keys() | new.keys())
        if old.get(name) != new.get(name)
    ]


def diff_inputs(old: KeyInputs, new: KeyInputs) -> InputsDiff:
    """Compare two input sets; a file removed and one added with the same
    content are reported as a rename."""
    removed = sorted(old.files.keys() - new.files.keys())
    added = sorted(new.files.keys() - old.files.keys())
    renamed: list[tuple[str, str]] = []
    by_digest: dict[str, list[str]] = {}
    for rel in removed:
        by_digest.setdefault(old.files[rel], []).append(rel)
    for rel in list(added):
        sources = by_digest.get(new.files[rel])
        if sources:
            source = sources.pop(0)
            renamed.append((source, rel))
            added.remove(rel)
            removed.remove(source)
    changed = sorted(
        rel for rel in old.files.keys() & new.files.keys() if old.files[rel] != new.files[rel]
    )
    env = [
        (name, old.env.get(name, _ABSENT), new.env.get(name, _ABSENT))
        for name in sorted(old.env.keys() | new.env.keys())
        if old.env.get(name, _ABSENT) != new.env.get(name, _ABSENT)
    ]
    return InputsDiff(
        added=added,
        removed=removed,
        changed=changed,
        renamed=renamed,
        versions=_mapping_changes(old.versions, new.versions),
        env=env,
        js_runtime=(old.js_runtime, new.js_runtime) if old.js_runtime != new.js_runtime else None,
        settings=_mapping_changes(old.settings, new.settings),
        schema=(old.schema, new.schema) if old.schema != new.schema else None,
    )


def _env_state(value: object) -> str:
    if value is _ABSENT:
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


def _read_manifest(path: Path) -> Manifest | None:
    try:
        return Manifest.from_json(json.loads((path / MANIFEST_NAME).read_bytes()))
    except (OSError, ValueError, CorruptArtifactError):
        return None


def find_manifest(cache: Cache, project: Project, against: str | None) -> Manifest:
    """The manifest to compare with: of key (or unique key prefix) ``against``,
    else of the most recent artifact of ``project`` in the cache.

    Raises:
        ArtifactMissingError: If there is no such artifact (or the prefix is ambiguous).
    """
    artifacts = cache.base / "artifacts"
    if against:
        candidates = sorted(artifacts.glob(f"{against}*")) if artifacts.is_dir() else []
        found = [m for p in candidates if (m := _read_manifest(p)) is not None]
        if len(found) != 1:
            why = "no artifact" if not found else f"{len(found)} artifacts"
            raise ArtifactMissingError(
                f"{why} in {cache.root} for key {against!r}", key=against
            )
        return found[0]
    best: Manifest | None = None
    for path in artifacts.iterdir() if artifacts.is_dir() else ():
        manifest = _read_manifest(path)
        if manifest is None or manifest.project.get("root") != str(project.root):
            continue
        if best is None or manifest.created > best.created:
            best = manifest
    if best is None:
        raise ArtifactMissingError(
            f"no artifact of {project.root} in {cache.root} to compare with; "
            "pass --against KEY",
            key="",
        )
    return best


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
    if manifest.key == key and against is None:
        text += "the most recent artifact is the current key: nothing to rebuild\n"
    return text
