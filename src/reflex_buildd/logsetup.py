"""How much the CLI and the daemon say, and how their log lines look.

One level for the whole process, set by ``--log-level`` (``-v`` is ``debug``,
``-q`` is ``warning``; env ``REFLEX_BUILDD_LOG_LEVEL``). It governs the
``reflex_buildd`` logger (warnings of the watcher, gc, waits) and the CLI's
own progress and event lines, so ``-q`` quiets both. Every logged line carries
a timestamp: the daemon runs for days, under systemd or in a container, and a
warning without a time cannot be matched with anything else.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["configure", "configure_default", "enabled"]

_LOGGER = "reflex_buildd"
_PREFIX = "reflex-buildd: "
_handler: logging.Handler | None = None
_explicit = False


class _Formatter(logging.Formatter):
    """``HH:MM:SS reflex-buildd: LEVEL: message``, without doubling the name."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        message = message.removeprefix(_PREFIX)
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        line = f"{self.formatTime(record, '%H:%M:%S')} {_PREFIX}{level}{message}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is now (test runners swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure(level: str = "info") -> None:
    """Send the ``reflex_buildd`` logger to stderr at ``level`` (an option said so)."""
    global _explicit
    _explicit = True
    _apply(level)


def configure_default(level: str = "info") -> None:
    """``level`` (``REFLEX_BUILDD_LOG_LEVEL``, through Settings) unless an option chose one."""
    if not _explicit:
        _apply(level)


def _apply(level: str) -> None:
    global _handler
    logger = logging.getLogger(_LOGGER)
    if _handler is None:
        _handler = _StderrHandler()
        _handler.setFormatter(_Formatter())
        logger.addHandler(_handler)
    logger.setLevel(level.upper())


def enabled(level: int) -> bool:
    """Whether a line of ``level`` (``logging.INFO``, ...) should be printed."""
    return logging.getLogger(_LOGGER).isEnabledFor(level)
