"""Exit codes, and the one place where an error becomes one.

Every command raises; :class:`ErrorHandlingGroup` catches what it raised,
prints one line (``error: <what failed>: <why>``; a failed build also prints
its log's tail) and exits with the code documented for that kind of failure.
A traceback is printed only with ``--debug`` (or ``REFLEX_BUILDD_DEBUG=1``):
a user needs the path and the cause, a developer the stack.

The codes:

- 1, a build failed (the app's code, Reflex or the JS build);
- 2, bad input: no project, an unreadable project file, a malformed
  declaration, an unknown key, a bad option value;
- 3, busy: another daemon (or ``dev`` session) runs the project, another
  process holds a lock this command waited for in vain, or ``dev``'s port is
  taken;
- 4, problems found (``verify``, ``doctor --strict``, a remote artifact
  refused: unsigned, wrongly signed, tampered);
- 5, the cache cannot be used: no space, permission denied, read-only, a file
  where a directory must be, an I/O error; or the remote cache cannot be
  reached or fails.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import click

from reflex_buildd_client.errors import (
    BuildFailedError,
    CacheIOError,
    LockTimeoutError,
    ReadOnlyCacheError,
    ReflexBuilddError,
    RemoteUnavailableError,
    UntrustedArtifactError,
    os_fault,
)
from reflex_buildd_client.settings import debug_enabled

__all__ = [
    "BAD_INPUT",
    "BUILD_FAILED",
    "BUSY",
    "CACHE_FAULT",
    "PROBLEMS_FOUND",
    "ErrorHandlingGroup",
    "as_error",
    "exit_code_of",
    "remember_cache_dir",
]

BUILD_FAILED = 1
BAD_INPUT = 2
BUSY = 3
PROBLEMS_FOUND = 4
CACHE_FAULT = 5


def remember_cache_dir(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
    """A ``--cache-dir`` callback: keep the value where the error handler finds it."""
    root = ctx.find_root()
    root.obj = {**(root.obj or {}), "cache_dir": value}
    return value


def as_error(exc: BaseException, cache_dir: Any = None) -> ReflexBuilddError | None:
    """The project's error for ``exc``; None for a bug (any other exception).

    A bare ``OSError`` (raised where nobody converted it) becomes a
    :class:`CacheIOError` when its path lies in the cache (``cache_dir``, else
    the default one), else an :class:`InputReadError`.
    """
    from filelock import Timeout  # imported when failing, not by every command

    if isinstance(exc, ReflexBuilddError):
        return exc
    if isinstance(exc, Timeout):
        return LockTimeoutError(f"the lock {exc.lock_file} was not free in time")
    if isinstance(exc, OSError):
        from reflex_buildd_client.settings import default_cache_dir

        return os_fault(exc, cache_dir if cache_dir is not None else default_cache_dir())
    return None


def exit_code_of(exc: ReflexBuilddError) -> int:
    """The documented exit code for ``exc`` (see the module doc)."""
    from .daemon import DaemonAlreadyRunningError
    from .dev import DevAlreadyRunningError
    from .devchecks import PortInUseError

    if isinstance(exc, BuildFailedError):
        return BUILD_FAILED
    if isinstance(exc, (CacheIOError, ReadOnlyCacheError, RemoteUnavailableError)):
        return CACHE_FAULT
    if isinstance(exc, UntrustedArtifactError):
        return PROBLEMS_FOUND
    busy = (DaemonAlreadyRunningError, DevAlreadyRunningError, PortInUseError, LockTimeoutError)
    if isinstance(exc, busy):
        return BUSY
    return BAD_INPUT


class ErrorHandlingGroup(click.Group):
    """A click group whose commands' errors all end here (see the module doc)."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; map what it raised to one line and an exit code."""
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            obj = ctx.obj or {}
            error = as_error(exc, obj.get("cache_dir"))
            if error is None:
                raise  # a bug: the traceback is the report
            # rich only now: a command that succeeds never pays for importing it.
            from rich.console import Console

            err = Console(stderr=True, highlight=False, soft_wrap=True)
            if bool(obj.get("debug")) or debug_enabled():
                err.print("".join(traceback.format_exception(exc)), markup=False, end="")
            if isinstance(error, BuildFailedError) and error.log_tail not in str(error):
                err.print(error.log_tail, markup=False)
            err.print("[red]error:[/red] ", end="")
            err.print(str(error), markup=False)
            sys.exit(exit_code_of(error))
