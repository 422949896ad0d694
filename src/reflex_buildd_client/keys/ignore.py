"""``.gitignore``-style ignore rules, compiled to regular expressions (pure).

The subset of gitignore(5) that projects actually use: comments, blank lines,
``!`` negation, ``\\`` escapes, trailing ``/`` for directories only, a ``/`` at
the start or in the middle anchoring the pattern to the ignore file's directory,
``*``, ``?``, ``[...]`` and ``**`` (leading, trailing and in the middle). The
last matching rule wins, and a deeper ignore file wins over a shallower one.
Global excludes (``core.excludesFile``, ``.git/info/exclude``) are deliberately
not read: they differ between machines, and the key must not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["IgnoreRule", "IgnoreRules", "is_ignored", "parse_ignore"]


@dataclass(frozen=True)
class IgnoreRule:
    """One compiled line of an ignore file."""

    regex: re.Pattern[str]
    negate: bool
    dir_only: bool


@dataclass(frozen=True)
class IgnoreRules:
    """The rules of one ignore file.

    Attributes:
        base: Project-relative POSIX path of the directory holding the file
            (``""`` for the project root); the rules apply below it.
        rules: The rules in file order.
    """

    base: str
    rules: tuple[IgnoreRule, ...]


def _class(pattern: str, start: int) -> tuple[str, int] | None:
    # A bracket expression; None if it never closes (then "[" is literal).
    i = start + 1
    if i < len(pattern) and pattern[i] in "!^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 1
    if i >= len(pattern):
        return None
    body = pattern[start + 1 : i]
    negated = body[:1] in ("!", "^")
    if negated:
        body = body[1:]
    body = body.replace("\\", "\\\\")
    return ("[^/" if negated else "[") + body + "]", i + 1


def _translate(pattern: str) -> str:
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "*" and pattern.startswith("**", i):
            at_start = i == 0 or pattern[i - 1] == "/"
            at_end = i + 2 == n or pattern[i + 2] == "/"
            if at_start and at_end:
                if i + 2 == n:  # "dir/**": everything inside
                    out.append(".*")
                    i += 2
                else:  # "**/": zero or more directories
                    out.append("(?:.*/)?")
                    i += 3
                continue
            out.append("[^/]*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[" and (bracket := _class(pattern, i)) is not None:
            out.append(bracket[0])
            i = bracket[1]
        elif char == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)


def _rule(line: str) -> IgnoreRule | None:
    # Trailing spaces are dropped unless escaped with a backslash.
    stripped = line.rstrip("\n\r")
    while stripped.endswith(" ") and not stripped.endswith("\\ "):
        stripped = stripped[:-1]
    if not stripped or stripped.startswith("#"):
        return None
    negate = stripped.startswith("!")
    if negate:
        stripped = stripped[1:]
    dir_only = stripped.endswith("/") and not stripped.endswith("\\/")
    if dir_only:
        stripped = stripped.rstrip("/")
    if not stripped:
        return None
    anchored = "/" in stripped
    stripped = stripped.lstrip("/")
    body = _translate(stripped)
    regex = ("^" if anchored else "^(?:.*/)?") + body + "$"
    try:
        return IgnoreRule(re.compile(regex, re.DOTALL), negate, dir_only)
    except re.error:
        return None  # git ignores a malformed pattern; so do we


def parse_ignore(text: str, base: str = "") -> IgnoreRules:
    """Compile the text of an ignore file found in directory ``base``."""
    rules = tuple(rule for line in text.splitlines() if (rule := _rule(line)) is not None)
    return IgnoreRules(base=base, rules=rules)


def is_ignored(rel: str, *, is_dir: bool, stack: Sequence[IgnoreRules]) -> bool:
    """Whether project-relative POSIX path ``rel`` is ignored.

    Args:
        rel: The path, relative to the project root.
        is_dir: Whether it names a directory (``dir/`` rules match only those).
        stack: The rule sets of the ignore files above ``rel``, shallowest first.
    """
    verdict = False
    for rules in stack:
        if rules.base:
            if not rel.startswith(rules.base + "/"):
                continue
            local = rel[len(rules.base) + 1 :]
        else:
            local = rel
        for rule in rules.rules:
            if rule.dir_only and not is_dir:
                continue
            if rule.regex.match(local):
                verdict = not rule.negate
    return verdict
