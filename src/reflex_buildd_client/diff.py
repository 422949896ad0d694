"""Pure: why two sets of build inputs (two keys) differ, for people to read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .keys import KeyInputs

__all__ = ["InputsDiff", "diff_inputs"]


@dataclass(frozen=True)
class InputsDiff:
    """The differences between two input sets, by kind."""

    files_added: list[str] = field(default_factory=list)
    files_removed: list[str] = field(default_factory=list)
    files_changed: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any(
            (self.files_added, self.files_removed, self.files_changed,
             self.versions, self.env, self.other)
        )  # fmt: skip

    def lines(self) -> list[str]:
        """One line per difference, most telling first (env, versions, files)."""
        out = list(self.env) + list(self.versions) + list(self.other)
        out += [f"file added: {p}" for p in self.files_added]
        out += [f"file removed: {p}" for p in self.files_removed]
        out += [f"file changed: {p}" for p in self.files_changed]
        return out

    def summary(self, limit: int = 6) -> str:
        """At most ``limit`` lines joined with '; '."""
        lines = self.lines()
        more = f"; and {len(lines) - limit} more" if len(lines) > limit else ""
        return "; ".join(lines[:limit]) + more if lines else "no difference in inputs"


def _mapping_diff(
    kind: str, ours: Mapping[str, str | None], theirs: Mapping[str, str | None]
) -> list[str]:
    out = []
    for name in sorted(set(ours) | set(theirs)):
        if name not in theirs:
            out.append(f"{kind} {name} is set here only")
        elif name not in ours:
            out.append(f"{kind} {name} is set there only")
        elif ours[name] != theirs[name]:
            out.append(f"{kind} {name} differs")
    return out


def diff_inputs(ours: KeyInputs, theirs: KeyInputs) -> InputsDiff:
    """What makes ``ours`` (here) differ from ``theirs`` (another process or build)."""
    files_ours, files_theirs = ours.files, theirs.files
    versions = []
    for name in sorted(set(ours.versions) | set(theirs.versions)):
        a, b = ours.versions.get(name), theirs.versions.get(name)
        if a != b:
            versions.append(f"version of {name}: {a or 'absent'} here, {b or 'absent'} there")
    other = []
    if ours.js_runtime != theirs.js_runtime:
        other.append(f"JS runtime: {ours.js_runtime} here, {theirs.js_runtime} there")
    for name in sorted(set(ours.settings) | set(theirs.settings)):
        if ours.settings.get(name) != theirs.settings.get(name):
            other.append(f"build setting {name} differs (another reflex-buildd version?)")
    return InputsDiff(
        files_added=sorted(set(files_ours) - set(files_theirs)),
        files_removed=sorted(set(files_theirs) - set(files_ours)),
        files_changed=sorted(
            p for p in set(files_ours) & set(files_theirs) if files_ours[p] != files_theirs[p]
        ),
        versions=versions,
        env=_mapping_diff("environment variable", ours.env, theirs.env),
        other=other,
    )
