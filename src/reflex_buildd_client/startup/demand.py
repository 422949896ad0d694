"""What a process asks of startup: the artifact of one key, and the rules for getting it.

One frozen value, made once by the caller (a host's mount, ``reflex-buildd build``, the
daemon) and passed whole to :func:`.checkout.checkout` and :func:`.wait.obtain`, instead of
the same eight arguments relayed through each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..cache.store import Artifact, Cache
from ..settings import DEFAULT_TIMEOUT, StartupPolicy

__all__ = ["Demand"]


@dataclass(frozen=True)
class Demand:
    """The artifact of ``key`` in ``cache``, obtained per ``policy`` within ``timeout``.

    Attributes:
        cache: The cache.
        key: The key of the current sources.
        policy: What to do when nobody builds the key.
        timeout: Seconds to wait in all; None waits forever.
        build: Builds the key (called with the key's lock held); required for
            :attr:`StartupPolicy.BUILD`, None otherwise.
        remote: Looks in the remote tier (:func:`reflex_buildd_client.remote.pull.remote_lookup`),
            given the seconds left; asked once, on the first local miss that nobody is
            building, before building or waiting.
        give_up: Asked at each poll of a wait (policy ``wait``) while nobody builds the key;
            a message ends the wait (:class:`.nodaemon.DaemonGrace`: no live daemon).
        explain_missing: Says why nobody builds this key (e.g. how it differs from the key a
            daemon built), for the wait log and errors.
        project: The project directory: named in the journal's ``hit`` and ``miss`` lines
            (``reflex-buildd stats``) and in suggested commands.
        retry_failed: Build again over a failure recorded before the demand (an explicit
            ``reflex-buildd build``); hosts fail fast instead.
    """

    cache: Cache
    key: str
    policy: StartupPolicy = StartupPolicy.BUILD
    timeout: float | None = DEFAULT_TIMEOUT
    build: Callable[[], Artifact] | None = None
    remote: Callable[[float | None], Artifact | None] | None = None
    give_up: Callable[[], str | None] | None = None
    explain_missing: Callable[[], str] | None = None
    project: Path | None = None
    retry_failed: bool = False

    def __post_init__(self) -> None:
        if self.policy is StartupPolicy.BUILD and self.build is None:
            raise ValueError("policy 'build' needs a build function")
