"""Reflex keeps one app per process: which in-process mount gets it (the first ``mount()``).

Reflex's state registry is global to a process, so one host process can run
the backend of one project in-process; every other project needs
``backend="process"``. Which mount wins must not depend on timing: hosts
start their mounts' lifespans in reverse order of ``mount()`` (each mount
wraps the lifespan before it), and backends load in background threads.

The rule: the **first** in-process mount made in this process (program order,
the order of ``mount()`` / ``ReflexMount(...)`` calls) owns the slot; a later
in-process mount of another project fails at its startup, before it opens
its artifact, with an error that names it and tells it to use
``backend="process"``. The host then does not start at all, rather than
start with one app's backend answering 503 (nginx refuses a configuration
that cannot work at ``nginx -t`` in the same spirit: at start, not at the
first request). Mounts of the same project share its one app; a mount in
process mode or served by ``reflex-buildd dev`` claims nothing.
"""

from __future__ import annotations

import itertools
import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidConfigError

__all__ = ["SlotClaim", "check_slot", "claim_slot"]

_lock = threading.Lock()
_order = itertools.count()
_claims: list[weakref.ref[SlotClaim]] = []


@dataclass(eq=False)
class SlotClaim:
    """One mount's standing in line for the process's in-process slot.

    Attributes:
        project: The project directory as given, resolved (not yet validated).
        describe: Says which mount this is, for errors (its path once known).
        wants: Whether the mount runs in-process now (its settings may change
            after it was made: ``PathDispatcher(backend=...)``).
        order: Its place in program order.
    """

    project: Path
    describe: Callable[[], str]
    wants: Callable[[], bool]
    order: int = field(default_factory=lambda: next(_order))


def claim_slot(
    project: str | os.PathLike[str], describe: Callable[[], str], wants: Callable[[], bool]
) -> SlotClaim:
    """Stand in line (call when the mount is made: program order decides).

    The registry holds claims weakly: a mount that is gone stands nowhere.
    The caller keeps the claim as long as the mount lives.
    """
    claim = SlotClaim(Path(project).expanduser().resolve(), describe, wants)
    with _lock:
        _claims[:] = [ref for ref in _claims if ref() is not None]
        _claims.append(weakref.ref(claim))
    return claim


def check_slot(claim: SlotClaim) -> None:
    """Raise if an earlier in-process mount of another project owns the slot.

    Raises:
        InvalidConfigError: Naming this mount (the later one) and the one
            that owns the slot, and what to change.
    """
    with _lock:
        earlier = [c for ref in _claims if (c := ref()) is not None and c.order < claim.order]
    for other in earlier:
        if other.project != claim.project and other.wants():
            raise InvalidConfigError(
                f"{claim.describe()} cannot run in this process: {other.describe()}, mounted "
                "earlier, already is its in-process Reflex app, and Reflex keeps one app per "
                f'process (a global state registry). Mount {claim.project} with backend="process" '
                "(or REFLEX_BUILDD_BACKEND=process) so that its backend runs in a process of its own"
            )
