"""Pure: why two sets of build inputs (two keys) differ.

Used by ``reflex-buildd explain`` (rendered in full) and by hosts, whose
startup message says in one line why the key they need differs from the one
the project's daemon built (for instance an environment variable set in one
process and not the other).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .schema import KeyInputs

__all__ = ["ABSENT", "InputsDiff", "diff_inputs"]

# An env entry is one of: not an input (absent), declared but unset (None), or
# set (the digest of its value).
ABSENT = object()

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

    def summary(self, *, old_label: str = "there", new_label: str = "here", limit: int = 6) -> str:
        """At most ``limit`` differences on one line, most telling first."""
        lines = [_env_line(name, old, new, old_label, new_label) for name, old, new in self.env]
        lines += [
            f"version of {n}: {o or 'absent'} {old_label}, {v or 'absent'} {new_label}"
            for n, o, v in self.versions
        ]
        if self.js_runtime:
            lines.append(
                f"JS runtime: {self.js_runtime[0]} {old_label}, {self.js_runtime[1]} {new_label}"
            )
        if self.schema or self.settings:
            lines.append("reflex-buildd builds differently (another version of it?)")
        lines += [f"file added: {rel}" for rel in self.added]
        lines += [f"file removed: {rel}" for rel in self.removed]
        lines += [f"file changed: {rel}" for rel in self.changed]
        lines += [f"file renamed: {a} -> {b}" for a, b in self.renamed]
        if not lines:
            return "no difference in inputs"
        more = f"; and {len(lines) - limit} more" if len(lines) > limit else ""
        return "; ".join(lines[:limit]) + more

    @property
    def empty(self) -> bool:
        """True when the inputs are the same (so are the keys)."""
        return not (
            self.added
            or self.removed
            or self.changed
            or self.renamed
            or self.versions
            or self.env
            or self.js_runtime
            or self.settings
            or self.schema
        )


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
        (name, old.env.get(name, ABSENT), new.env.get(name, ABSENT))
        for name in sorted(old.env.keys() | new.env.keys())
        if old.env.get(name, ABSENT) != new.env.get(name, ABSENT)
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


def _env_line(name: str, old: object, new: object, old_label: str, new_label: str) -> str:
    def state(value: object) -> str:
        return "not an input" if value is ABSENT else "unset" if value is None else "set"

    if state(old) == "set" and state(new) == "set":
        return f"environment variable {name} differs"
    if state(new) == "set":
        return f"environment variable {name} is set {new_label} only"
    if state(old) == "set":
        return f"environment variable {name} is set {old_label} only"
    return f"environment variable {name}: {state(old)} {old_label}, {state(new)} {new_label}"
