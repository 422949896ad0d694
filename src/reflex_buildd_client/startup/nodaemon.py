"""A host waiting for a daemon (policy ``wait``) when no daemon is there.

Waiting only makes sense while someone may build the key: a build in
progress, or a live daemon watching the project. With neither, the host says
so at once, with the commands that would help (for this project and cache,
not a placeholder), and gives up after a short grace period instead of
sitting out the whole startup timeout: the grace covers a daemon started at
the same moment as the host (``scripts/demo.sh`` does exactly that), which
records itself within a second or two.

The grace is ``Settings.daemon_grace`` (``REFLEX_BUILDD_DAEMON_GRACE``, 10 s).
"""

from __future__ import annotations

import logging
import shlex
import time
from collections.abc import Callable
from pathlib import Path

from ..cache.status import read_daemon
from ..cache.store import Cache

__all__ = ["DaemonGrace", "suggested_commands"]

logger = logging.getLogger("reflex_buildd")


def suggested_commands(root: Path, cache: Cache) -> str:
    """The commands that build ``root`` into ``cache``, ready to paste."""
    where = f"{shlex.quote(str(root))} --cache-dir {shlex.quote(str(cache.root))}"
    return f"reflex-buildd watch {where} (a daemon), or once: reflex-buildd build {where}"


class DaemonGrace:
    """Called at each poll of a wait nobody serves; returns why to give up, or None.

    Args:
        cache: The cache the host reads.
        root: The project directory.
        grace: Seconds without a live daemon before giving up.
        clock: Monotonic clock (tests pass their own).
    """

    def __init__(
        self,
        cache: Cache,
        root: Path,
        *,
        grace: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cache, self._root, self._grace, self._clock = cache, root, grace, clock
        self._since: float | None = None

    def __call__(self) -> str | None:
        daemon = read_daemon(self._cache, self._root)
        # alive is None for a daemon on another host sharing the cache: trust it.
        if daemon is not None and daemon.alive is not False:
            self._since = None
            return None
        now = self._clock()
        if self._since is None:
            self._since = now
            logger.warning(
                "reflex-buildd: no daemon watches %s (policy 'wait'): waiting %.0fs for one "
                "to start, then giving up; start one with: %s",
                self._root,
                self._grace,
                suggested_commands(self._root, self._cache),
            )
        if now - self._since < self._grace:
            return None
        return (
            f"no daemon watched {self._root} during the {self._grace:.0f}s grace period of "
            f"policy 'wait' (REFLEX_BUILDD_DAEMON_GRACE); start one with: "
            f"{suggested_commands(self._root, self._cache)}; or let the host build "
            "(REFLEX_BUILDD_POLICY=build)"
        )
