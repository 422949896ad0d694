"""How long a forwarded request waits for the backend child, and how a wait that
passes its bound is reported.

Every wait on the child is bounded, as nginx bounds its waits on an upstream:

- ``connect``: opening a connection to the child's socket (nginx's
  ``proxy_connect_timeout``; 60 s there, for networks). On a local Unix
  socket a connect is immediate, or refused, or waits only because the
  child's listen backlog is full, i.e. it has stopped accepting: 5 s is
  plenty, and not a setting. Past it: **503** (the child is unreachable).
- ``response``: the first byte of the answer once the request is sent, and
  then each later read of the body (nginx's ``proxy_read_timeout``, whose
  60 s default this follows, between two reads rather than for the whole
  response, so long downloads and streams are not cut). A websocket
  handshake waits as long. Past it, before the answer has started: **504**
  (no answer in time); after: the stream is cut. ``REFLEX_BUILDD_BACKEND_TIMEOUT``
  changes it, for an app with handlers that legitimately take longer.

A child that is stuck (stopped, or its event loop blocked by a long
synchronous handler) would otherwise log one line per waiting request: an
:class:`Incidents` logs the first failure, then one line when the child
answers again with how many requests failed in between.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ..settings import DEFAULT_BACKEND_TIMEOUT

__all__ = ["DEFAULT_RESPONSE_BOUND", "Bounds", "Incidents"]

logger = logging.getLogger("reflex_buildd")

DEFAULT_CONNECT_BOUND = 5.0
DEFAULT_RESPONSE_BOUND = DEFAULT_BACKEND_TIMEOUT  # REFLEX_BUILDD_BACKEND_TIMEOUT's default


@dataclass(frozen=True, slots=True)
class Bounds:
    """Seconds a forwarded request waits on the child (see the module docstring).

    Attributes:
        connect: For a connection to the child's socket.
        response: For the answer's first byte, and between two reads after it.
    """

    connect: float = DEFAULT_CONNECT_BOUND
    response: float = DEFAULT_RESPONSE_BOUND


class Incidents:
    """Logs a failing child once per incident, not once per request.

    An incident starts with the first failed request and ends with the next
    answer; the host's log gets one warning at each end.
    """

    def __init__(self, what: str) -> None:
        self._what = what
        self._started: float | None = None
        self._failed: dict[int, int] = {}

    @property
    def since(self) -> float | None:
        """When (``time.monotonic()``) the open incident's first failure was; None: no incident."""
        return self._started

    def failed(self, status: int, reason: str) -> None:
        """A request got ``status`` (502, 503 or 504) because of ``reason``."""
        self._failed[status] = self._failed.get(status, 0) + 1
        if self._started is None:
            self._started = time.monotonic()
            logger.warning(
                "reflex-buildd: %s %s; its requests get %d until it answers again "
                "(logged once for this incident)",
                self._what,
                reason,
                status,
            )

    def answered(self) -> None:
        """The child answered a request: the incident, if any, is over."""
        if self._started is None:
            return
        seconds = time.monotonic() - self._started
        counts = ", ".join(f"{n} got {status}" for status, n in sorted(self._failed.items()))
        self._started = None
        self._failed = {}
        logger.warning(
            "reflex-buildd: %s answers again after %.1fs (%s)", self._what, seconds, counts
        )
