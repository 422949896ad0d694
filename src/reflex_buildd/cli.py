"""The ``reflex-buildd`` command line (click + rich, like Reflex's own CLI).

Exit codes: 0 success, 1 the build failed, 2 bad input (no project, bad path).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console

from reflex_buildd_client.errors import BuildFailedError, ReflexBuilddError
from reflex_buildd_client.project import find_project
from reflex_buildd_client.sources import compute_key
from reflex_buildd_client.store import Cache

from . import __version__

__all__ = ["main"]

_err = Console(stderr=True, highlight=False)

project_argument = click.argument(
    "project",
    default=".",
    type=click.Path(file_okay=False, path_type=Path),
)
cache_dir_option = click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="REFLEX_BUILDD_CACHE_DIR",
    default=None,
    help="Cache directory [env: REFLEX_BUILDD_CACHE_DIR; default: the per-user cache].",
)


def _fail(exc: ReflexBuilddError) -> None:
    if isinstance(exc, BuildFailedError):
        if exc.log_tail:
            _err.print(exc.log_tail, markup=False)
        _err.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        sys.exit(1)
    _err.print(f"[red]error:[/red] {exc}", soft_wrap=True)
    sys.exit(2)


@click.group()
@click.version_option(__version__, message="%(version)s")
def main() -> None:
    """Build Reflex apps once into a shared cache; mount them on any path."""


@main.command()
@project_argument
@cache_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print {key, path, built, seconds}.")
def build(project: Path, cache_dir: Path | None, as_json: bool) -> None:
    """Build PROJECT into the cache unless its key is already there.

    The last line of output is the key.
    """
    from .build import ensure_built

    try:
        proj = find_project(project)
        cache = Cache(cache_dir)
        with _err.status(f"building {proj.root.name}", spinner="dots"):
            outcome = ensure_built(proj, cache)
    except ReflexBuilddError as exc:
        _fail(exc)
        return
    verb = "built" if outcome.built else "cached"
    _err.print(f"{verb} {outcome.key} in {outcome.seconds:.2f}s -> {outcome.artifact.path}")
    if as_json:
        click.echo(
            json.dumps(
                {
                    "key": outcome.key,
                    "path": str(outcome.artifact.path),
                    "built": outcome.built,
                    "seconds": round(outcome.seconds, 3),
                }
            )
        )
    else:
        click.echo(outcome.key)


extra_inputs_options = [
    click.option(
        "--input",
        "extra_inputs",
        multiple=True,
        metavar="GLOB",
        help="Extra input files (project-relative glob), beyond [tool.reflex-buildd] inputs.",
    ),
    click.option(
        "--input-env",
        "extra_env",
        multiple=True,
        metavar="NAME",
        help="Extra input environment variable (name or pattern), beyond [tool.reflex-buildd] env.",
    ),
]


def _with_extra_inputs(command):  # type: ignore[no-untyped-def]
    for option in reversed(extra_inputs_options):
        command = option(command)
    return command


@main.command()
@project_argument
@cache_dir_option
@_with_extra_inputs
def key(
    project: Path, cache_dir: Path | None, extra_inputs: tuple[str, ...], extra_env: tuple[str, ...]
) -> None:
    """Print the key of PROJECT's current build inputs, without building."""
    try:
        click.echo(
            compute_key(
                find_project(project),
                cache_dir=cache_dir,
                extra_inputs=extra_inputs,
                extra_env=extra_env,
            )[0]
        )
    except ReflexBuilddError as exc:
        _fail(exc)


@main.command()
@project_argument
@cache_dir_option
@click.option("--against", metavar="KEY", help="Key (or unique prefix) to compare with.")
@_with_extra_inputs
def explain(
    project: Path,
    cache_dir: Path | None,
    against: str | None,
    extra_inputs: tuple[str, ...],
    extra_env: tuple[str, ...],
) -> None:
    """Explain why PROJECT's current key differs from a cached one.

    Compares the current inputs with those recorded for KEY, or by default
    with the most recent artifact of PROJECT in the cache.
    """
    from .explain import explain as explain_inputs

    try:
        proj = find_project(project)
        cache = Cache(cache_dir)
        current, inputs = compute_key(
            proj, cache_dir=cache.root, extra_inputs=extra_inputs, extra_env=extra_env
        )
        click.echo(explain_inputs(proj, cache, key=current, inputs=inputs, against=against), nl=False)
    except ReflexBuilddError as exc:
        _fail(exc)
