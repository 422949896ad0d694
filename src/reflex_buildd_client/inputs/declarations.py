"""Extra inputs a user declares: ``[tool.reflex-buildd]`` in ``pyproject.toml``,
``REFLEX_BUILDD_INPUTS`` / ``REFLEX_BUILDD_ENV``, or arguments."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputsConfigError
from ..settings import Settings

__all__ = ["Declared", "declared_inputs"]


@dataclass(frozen=True)
class Declared:
    """Extra inputs a user declared.

    Attributes:
        globs: Project-relative glob patterns of extra input files (``**`` allowed).
        env: Names (or fnmatch patterns such as ``FEATURE_*``) of extra input
            environment variables.
    """

    globs: tuple[str, ...] = ()
    env: tuple[str, ...] = ()


def _string_list(table: Mapping[str, object], name: str, source: Path) -> tuple[str, ...]:
    value = table.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputsConfigError(f"{source}: [tool.reflex-buildd] {name} must be a list of strings")
    return tuple(value)


def _check_glob(pattern: str) -> str:
    posix = pattern.replace("\\", "/")
    if posix.startswith("/") or ".." in posix.split("/") or not posix:
        raise InputsConfigError(
            f"declared input {pattern!r} must be a relative glob inside the project"
        )
    return posix


def declared_inputs(
    root: Path,
    *,
    extra_inputs: Iterable[str] = (),
    extra_env: Iterable[str] = (),
    settings: Settings,
) -> Declared:
    """The extra inputs declared for the project at ``root``.

    Sources, all added together: ``[tool.reflex-buildd] inputs`` and ``env`` in
    ``root/pyproject.toml``, the comma-separated ``REFLEX_BUILDD_INPUTS`` and
    ``REFLEX_BUILDD_ENV`` variables, and the arguments.

    Raises:
        InputsConfigError: If the table or a pattern is malformed.
    """
    globs: list[str] = []
    env: list[str] = []
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        import tomllib  # only for projects with a pyproject.toml

        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputsConfigError(f"cannot read {pyproject}: {exc}") from exc
        table = data.get("tool", {}).get("reflex-buildd", {})
        if not isinstance(table, dict):
            raise InputsConfigError(f"{pyproject}: [tool.reflex-buildd] must be a table")
        globs += _string_list(table, "inputs", pyproject)
        env += _string_list(table, "env", pyproject)
    globs += [*settings.inputs, *extra_inputs]
    env += [*settings.env, *extra_env]
    return Declared(
        globs=tuple(sorted({_check_glob(g) for g in globs})),
        env=tuple(sorted(set(env))),
    )
