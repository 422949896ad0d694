"""Child processes that never outlive their parent.

The export of a build, the backend child of process mode and the dev servers
all run in processes of their own; a parent killed with SIGKILL cannot stop
them, so the kernel must: Linux's parent-death signal (``PR_SET_PDEATHSIG``),
set in the child between fork and exec. Elsewhere there is no such signal and
the callers' process-group kills are what remains.
"""

from __future__ import annotations

import ctypes
import functools
import signal
import sys
from collections.abc import Callable

__all__ = ["dies_with_parent"]

_PR_SET_PDEATHSIG = 1


def _set_parent_death_signal(signum: int) -> None:  # pragma: no cover - runs in the child
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum)
    except (OSError, AttributeError):
        pass


def dies_with_parent(signum: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get ``signum`` when its parent dies (None off Linux).

    SIGKILL for children that must go at once (an export writing the shared
    workspace, a backend), SIGTERM for those that clean up after themselves.
    """
    if not sys.platform.startswith("linux"):
        return None
    return functools.partial(_set_parent_death_signal, signum)
