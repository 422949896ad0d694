"""Check out an artifact for serving: obtain it, lease it, verify it.

The order matters. The lease comes first, so that gc cannot remove the
artifact while it is read; the artifact is opened again under the lease (what
:func:`~.wait.obtain` returned may have been evicted and rebuilt meanwhile);
then every file is checked against the manifest, once per process.

A corrupt artifact is quarantined (:func:`.verify.quarantine`) whatever the
startup policy, so nobody serves it; then the policy decides: ``build`` and
``wait`` obtain the key again (a rebuild here, or by a daemon or another
host), ``fail`` raises :class:`~.errors.CorruptArtifactError` with the
command that rebuilds it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import CorruptArtifactError, WaitTimeoutError
from .lease import Lease, take_lease
from .store import Artifact, Cache
from .verify import find_problems, quarantine, verify_once
from .wait import StartupPolicy

__all__ = ["Checkout", "checkout"]

logger = logging.getLogger("reflex_buildd")

# A rebuilt artifact that is corrupt again points at the disk or the builder,
# not at bad luck: stop instead of rebuilding forever.
_MAX_CORRUPT = 2
# Obtained, then gone before the lease (gc, quarantine): obtain again, a few times.
_MAX_ROUNDS = 20


@dataclass(frozen=True)
class Checkout:
    """A leased, verified artifact and what it cost."""

    artifact: Artifact
    lease: Lease
    verify_seconds: float


def _corrupt(
    cache: Cache,
    key: str,
    artifact: Artifact | None,
    exc: CorruptArtifactError,
    policy: StartupPolicy,
) -> None:
    bad = list(find_problems(artifact)) if artifact is not None else []
    where = quarantine(
        cache,
        key,
        reason=str(exc),
        manifest=artifact.manifest if artifact is not None else None,
        bad_files=bad,
    )
    moved = f"; moved to {where}" if where is not None else ""
    if policy is StartupPolicy.FAIL:
        raise CorruptArtifactError(
            f"{exc}{moved}; rebuild it with: reflex-buildd build PROJECT --cache-dir {cache.root}"
        ) from exc
    logger.warning("reflex-buildd: %s%s; obtaining it again", exc, moved)


def checkout(
    cache: Cache,
    key: str,
    *,
    obtain: Callable[[], Artifact],
    policy: StartupPolicy,
    verify: bool = True,
) -> Checkout:
    """Obtain the artifact of ``key`` (``obtain`` waits/builds per ``policy``), lease and verify it.

    Raises:
        CorruptArtifactError: The artifact is corrupt and the policy is
            ``fail``, or it came out corrupt again after a rebuild.
        WaitTimeoutError: The artifact kept vanishing between obtaining and leasing.
        Whatever ``obtain`` raises (build failed, missing, timeout).
    """
    corrupt = 0
    for _ in range(_MAX_ROUNDS):
        artifact: Artifact | None = None
        try:
            obtain()
            lease = take_lease(cache, key)
            if lease is None:
                continue  # evicted or quarantined between the two: obtain again
            try:
                # Under the lease: what is there now stays until we release it.
                artifact = cache.open(key)
                if artifact is None:
                    lease.release()
                    continue
                started = time.perf_counter()
                if verify:
                    verify_once(artifact)
                return Checkout(artifact, lease, time.perf_counter() - started)
            except BaseException:
                lease.release()
                raise
        except CorruptArtifactError as exc:
            corrupt += 1
            _corrupt(cache, key, artifact, exc, policy)
            if corrupt >= _MAX_CORRUPT:
                raise CorruptArtifactError(
                    f"the artifact of {key} was corrupt again after it was obtained anew: {exc}"
                ) from exc
    raise WaitTimeoutError(
        f"the artifact of {key} vanished {_MAX_ROUNDS} times between obtaining and leasing it "
        f"(is a gc with a tiny --max-size running in a loop?)",
        key=key,
    )
