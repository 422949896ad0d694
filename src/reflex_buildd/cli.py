"""The ``reflex-buildd`` command line (click + rich, like Reflex's own CLI).

Every command takes the project directory (default: the current directory)
and ``--cache-dir`` (env ``REFLEX_BUILDD_CACHE_DIR``).

Exit codes: 0 success, 1 a build failed, 2 bad input (no project, bad path,
bad option), 3 another daemon already watches the project.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from reflex_buildd_client.errors import BuildFailedError, ReflexBuilddError
from reflex_buildd_client.project import find_project
from reflex_buildd_client.sources import compute_key
from reflex_buildd_client.store import Cache

from . import __version__

__all__ = ["main"]

_err = Console(stderr=True, highlight=False, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])

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
_extra_inputs_options = (
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
)


def extra_inputs_options(command: F) -> F:
    """Add ``--input`` and ``--input-env`` to a command."""
    for option in reversed(_extra_inputs_options):
        command = option(command)
    return command


def _fail(exc: ReflexBuilddError) -> None:
    from .daemon import DaemonAlreadyRunningError

    if isinstance(exc, BuildFailedError):
        if exc.log_tail and exc.log_tail not in str(exc):
            _err.print(exc.log_tail, markup=False)
        _err.print(f"[red]error:[/red] {exc}")
        sys.exit(1)
    _err.print(f"[red]error:[/red] {exc}")
    sys.exit(3 if isinstance(exc, DaemonAlreadyRunningError) else 2)


@click.group()
@click.version_option(__version__, message="%(version)s")
def main() -> None:
    """Build Reflex apps once into a shared cache; mount them on any path."""


@main.command()
@project_argument
@cache_dir_option
@extra_inputs_options
@click.option("--json", "as_json", is_flag=True, help="Print {key, path, built, seconds}.")
def build(
    project: Path,
    cache_dir: Path | None,
    extra_inputs: tuple[str, ...],
    extra_env: tuple[str, ...],
    as_json: bool,
) -> None:
    """Build PROJECT into the cache unless its key is already there.

    If another process is building the same key, wait for it instead. The
    last line of output is the key.
    """
    from .build import ensure_built

    try:
        proj = find_project(project)
        cache = Cache(cache_dir)
        with _err.status(f"building {proj.root.name}", spinner="dots"):
            outcome = ensure_built(proj, cache, extra_inputs=extra_inputs, extra_env=extra_env)
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


@main.command()
@project_argument
@cache_dir_option
@extra_inputs_options
def key(
    project: Path, cache_dir: Path | None, extra_inputs: tuple[str, ...], extra_env: tuple[str, ...]
) -> None:
    """Print the key of PROJECT's current build inputs, without building."""
    try:
        found = compute_key(
            find_project(project), cache_dir=cache_dir, extra_inputs=extra_inputs, extra_env=extra_env
        )
    except ReflexBuilddError as exc:
        _fail(exc)
        return
    click.echo(found[0])


@main.command()
@project_argument
@cache_dir_option
@click.option("--against", metavar="KEY", help="Key (or unique prefix) to compare with.")
@extra_inputs_options
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


@main.command()
@project_argument
@cache_dir_option
@extra_inputs_options
@click.option(
    "--poll/--no-poll",
    default=None,
    help="Poll the filesystem instead of inotify (network mounts, some container "
    "volumes) [env: REFLEX_BUILDD_POLL].",
)
@click.option(
    "--debounce",
    type=click.FloatRange(0.0, 60.0),
    default=0.3,
    show_default=True,
    help="Seconds of quiet that end a burst of saves.",
)
def watch(
    project: Path,
    cache_dir: Path | None,
    extra_inputs: tuple[str, ...],
    extra_env: tuple[str, ...],
    poll: bool | None,
    debounce: float,
) -> None:
    """Watch PROJECT and keep its build current in the cache (a foreground daemon).

    Builds the current key if missing, then rebuilds on every change to a
    build input. Logs to stderr; stops cleanly on SIGTERM or SIGINT.
    """
    from .daemon import DaemonOptions, run_daemon

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    options = DaemonOptions(
        poll=poll, debounce=debounce, extra_inputs=extra_inputs, extra_env=extra_env
    )
    try:
        run_daemon(find_project(project), Cache(cache_dir), stop=stop, options=options)
    except ReflexBuilddError as exc:
        _fail(exc)


@main.command()
@project_argument
@cache_dir_option
@click.option("--strict", is_flag=True, help="Exit with status 4 when anything is found (for CI).")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as a JSON list.")
def doctor(project: Path, cache_dir: Path | None, strict: bool, as_json: bool) -> None:
    """List root-absolute URLs in PROJECT's build that will leave the mount prefix.

    Builds the current key first if it is missing. Each finding names the
    file, the component or element and the source line when it can, and what
    to do (see docs/assets.md). Exit status: 0, or 4 with --strict when
    anything was found; 1 if the build fails, 2 on bad input.
    """
    from .build import ensure_built
    from .doctor import diagnose, format_findings

    try:
        proj = find_project(project)
        outcome = ensure_built(proj, Cache(cache_dir))
        findings = diagnose(outcome.artifact, proj.root)
    except ReflexBuilddError as exc:
        _fail(exc)
        return
    if as_json:
        click.echo(json.dumps([f.to_json() for f in findings], indent=1))
    elif findings:
        click.echo(format_findings(findings))
    _err.print(
        f"{len(findings)} reference(s) will leave the mount prefix in {outcome.key}"
        if findings
        else f"nothing leaves the mount prefix in {outcome.key}"
    )
    if strict and findings:
        sys.exit(4)
