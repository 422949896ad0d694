"""The exceptions of reflex-buildd.

One base, :class:`ReflexBuilddError`; every leaf also subclasses the builtin a
caller would naturally catch (``FileNotFoundError``, ``TimeoutError``, ...), the
way filelock's ``Timeout`` is a ``TimeoutError``. Errors cross process
boundaries (a pool, a test harness), so each survives pickling: a class whose
constructor takes keyword-only fields says how to rebuild it (``__reduce__``).

Faults of the operating system (no space, permission denied, a path under a
file) never surface as a bare ``OSError``: they become :class:`CacheIOError`
(the cache could not be read or written) or :class:`InputReadError` (a file of
the project could not be read), which keep ``errno``, ``strerror`` and
``filename`` and say in one line which path failed and why.
"""

from __future__ import annotations

import errno as _errno
import os
from collections.abc import Mapping
from typing import Any, ClassVar, Self

__all__ = [
    "ArtifactMissingError",
    "BuildFailedError",
    "CacheIOError",
    "CorruptArtifactError",
    "InputReadError",
    "InputsConfigError",
    "InvalidConfigError",
    "InvalidPathError",
    "JSRuntimeNotFoundError",
    "LockTimeoutError",
    "ProjectNotFoundError",
    "PushRefusedError",
    "ReadOnlyCacheError",
    "ReflexBuilddError",
    "RemoteUnavailableError",
    "UntrustedArtifactError",
    "WaitTimeoutError",
    "os_fault",
]


class ReflexBuilddError(Exception):
    """Base class of every error raised by reflex-buildd."""


class ProjectNotFoundError(ReflexBuilddError, FileNotFoundError):
    """The path given as a Reflex project is missing or is not a Reflex project."""


class InvalidPathError(ReflexBuilddError, ValueError):
    """A mount path or prefix that cannot be used (not absolute, has ``..``, ...)."""


class ArtifactMissingError(ReflexBuilddError, LookupError):
    """The cache holds no artifact for the key of the current sources."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (type(self), self.args, {"key": self.key})


class CorruptArtifactError(ReflexBuilddError, ValueError):
    """An artifact's files do not match its manifest."""


class BuildFailedError(ReflexBuilddError, RuntimeError):
    """A build ran and failed; ``log_tail`` holds the end of its output."""

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        log_tail: str = "",
        exit_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.key = key
        self.log_tail = log_tail
        self.exit_code = exit_code

    def __reduce__(self) -> tuple[Any, ...]:
        fields = {"key": self.key, "log_tail": self.log_tail, "exit_code": self.exit_code}
        return _rebuild, (type(self), self.args, fields)


class JSRuntimeNotFoundError(ReflexBuilddError, FileNotFoundError):
    """No JavaScript runtime that Reflex can build with was found."""


class WaitTimeoutError(ReflexBuilddError, TimeoutError):
    """No artifact arrived for a key within the configured time."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (type(self), self.args, {"key": self.key})


class LockTimeoutError(ReflexBuilddError, TimeoutError):
    """A lock in the cache was not free within the time allowed (filelock's ``Timeout``)."""


class InputsConfigError(ReflexBuilddError, ValueError):
    """The declared extra inputs (pyproject.toml, env, arguments) are malformed."""


class InvalidConfigError(ReflexBuilddError, ValueError):
    """A setting (trusted proxies, public URL, backend URL) that cannot be used."""


class ReadOnlyCacheError(ReflexBuilddError, PermissionError):
    """The cache lacks what is needed, and this process may not write it there."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (type(self), self.args, {"key": self.key})


class RemoteUnavailableError(ReflexBuilddError, ConnectionError):
    """The remote cache could not be reached or answered with an error (down, 5xx, timeout)."""


class UntrustedArtifactError(ReflexBuilddError, PermissionError):
    """A remote artifact was refused: unsigned, wrongly signed, or not matching its manifest.

    ``reason`` is a short, fixed word for metrics (``unsigned``, ``untrusted-signer``,
    ``bad-signature``, ``wrong-key``, ``other-inputs``, ``unsafe-path``, ``bad-digest``,
    ``other-recipe``, ``malformed``, or ``refused``).
    """

    def __init__(self, message: str, *, reason: str = "refused") -> None:
        super().__init__(message)
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (type(self), self.args, {"reason": self.reason})


class PushRefusedError(ReflexBuilddError, PermissionError):
    """This machine must not push: it holds only public keys (it verifies, it never signs)."""


class _OSFault(ReflexBuilddError, OSError):
    """An ``OSError`` of the machine, with the path and the cause in one line."""

    what = "use"

    @classmethod
    def wrap(cls, exc: OSError, path: str | os.PathLike[str] | None = None) -> Self:
        """The same fault (errno, strerror, filename) as this error type."""
        if isinstance(exc, cls):
            return exc
        filename = exc.filename if exc.filename is not None else path
        code = exc.errno if exc.errno is not None else _errno.EIO
        return cls(code, exc.strerror or os.strerror(code), filename)

    def __str__(self) -> str:
        where = f" {os.fsdecode(self.filename)}" if self.filename is not None else ""
        why = self.strerror or os.strerror(self.errno or 0)
        hint = self.hints.get(self.errno or 0)
        return f"cannot {self.what}{where}: {why}" + (f" ({hint})" if hint else "")

    # What to do about a fault, by errno (none: the path and the cause say it).
    hints: ClassVar[Mapping[int, str]] = {}


class CacheIOError(_OSFault):
    """The cache directory could not be read or written (no space, permissions, a file in the way)."""

    what = "use the cache at"
    hints: ClassVar[Mapping[int, str]] = dict.fromkeys(
        (_errno.ENOSPC, _errno.EDQUOT),
        "free space there (`reflex-buildd gc --max-size SIZE`) or point --cache-dir / "
        "REFLEX_BUILDD_CACHE_DIR at a larger disk",
    )


class InputReadError(_OSFault):
    """A file of the project (a build input, ``rxconfig.py``) could not be read."""

    what = "read"


def os_fault(exc: OSError, cache_root: str | os.PathLike[str]) -> ReflexBuilddError:
    """:class:`CacheIOError` if the failing path lies in the cache, else :class:`InputReadError`.

    For code that reads the project and writes the cache in one go (keying
    reads the sources and updates the stat cache).
    """
    if isinstance(exc, ReflexBuilddError):
        return exc
    from pathlib import Path

    root = Path(cache_root).absolute()
    name = exc.filename
    inside = name is not None and Path(os.fsdecode(name)).absolute().is_relative_to(root)
    return (CacheIOError if inside else InputReadError).wrap(exc)


def _rebuild(cls: type[Exception], args: tuple[Any, ...], fields: dict[str, Any]) -> Exception:
    """Unpickle an error whose constructor takes keyword-only fields."""
    return cls(*args, **fields)
