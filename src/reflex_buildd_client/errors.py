"""The exceptions of reflex-buildd.

One base, :class:`ReflexBuilddError`; every leaf also subclasses the builtin a
caller would naturally catch (``FileNotFoundError``, ``TimeoutError``, ...), the
way filelock's ``Timeout`` is a ``TimeoutError``.
"""

from __future__ import annotations

__all__ = [
    "ArtifactMissingError",
    "BuildFailedError",
    "CorruptArtifactError",
    "InputsConfigError",
    "InvalidConfigError",
    "InvalidPathError",
    "JSRuntimeNotFoundError",
    "ProjectNotFoundError",
    "ReadOnlyCacheError",
    "ReflexBuilddError",
    "RemoteUnavailableError",
    "UntrustedArtifactError",
    "WaitTimeoutError",
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


class CorruptArtifactError(ReflexBuilddError, ValueError):
    """An artifact's files do not match its manifest."""


class BuildFailedError(ReflexBuilddError, RuntimeError):
    """A build ran and failed; ``log_tail`` holds the end of its output."""

    def __init__(self, message: str, *, key: str | None = None, log_tail: str = "") -> None:
        super().__init__(message)
        self.key = key
        self.log_tail = log_tail


class JSRuntimeNotFoundError(ReflexBuilddError, FileNotFoundError):
    """No JavaScript runtime that Reflex can build with was found."""


class WaitTimeoutError(ReflexBuilddError, TimeoutError):
    """No artifact arrived for a key within the configured time."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


class InputsConfigError(ReflexBuilddError, ValueError):
    """The declared extra inputs (pyproject.toml, env, arguments) are malformed."""


class InvalidConfigError(ReflexBuilddError, ValueError):
    """A setting (trusted proxies, public URL, backend URL) that cannot be used."""


class ReadOnlyCacheError(ReflexBuilddError, PermissionError):
    """The cache lacks what is needed, and this process may not write it there."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class RemoteUnavailableError(ReflexBuilddError, ConnectionError):
    """The remote cache could not be reached or answered with an error (down, 5xx, timeout)."""


class UntrustedArtifactError(ReflexBuilddError, PermissionError):
    """A remote artifact was refused: unsigned, wrongly signed, or not matching its manifest."""
