"""Make the host's startup messages visible when the host configured no logging.

A host that builds or waits at startup logs its progress through the
``reflex_buildd`` logger. Under a bare ``uvicorn app:app`` nothing handles
that logger (uvicorn configures only its own), so INFO lines would vanish and
the host would look hung for the length of a build. When no handler is
configured anywhere up the logger's hierarchy, one stderr handler with a
timestamp is added; a host that configures logging (``logging.basicConfig``,
Django's ``LOGGING``, a dictConfig) keeps full control.
"""

from __future__ import annotations

import logging

__all__ = ["show_logs"]

_FORMAT = "%(levelname)s:     %(asctime)s %(message)s"


def show_logs() -> None:
    """Send ``reflex_buildd`` INFO lines to stderr unless logging is configured."""
    logger = logging.getLogger("reflex_buildd")
    if logger.hasHandlers():
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
