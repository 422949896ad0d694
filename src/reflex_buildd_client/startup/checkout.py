"""Check out an artifact for serving, in one pass: obtain, lease, read verified.

The order matters. The lease comes first, so that gc cannot remove the
artifact while it is read; the manifest is read again under the lease (what
:func:`~.wait.obtain` found may have been evicted and rebuilt meanwhile);
then every file is read **once**, checked against the manifest, and those
bytes are what the host serves: a file rewritten on disk after the check is
never served.

A cache this process cannot write to (an image that ships a prebuilt cache,
run as another user) still serves: there is no lease then (gc on a writable
copy of the cache cannot see this host), which is logged once.

A corrupt artifact is quarantined (:func:`.verify.quarantine`) whatever the
startup policy, so nobody serves it; then the policy decides: ``build`` and
``wait`` obtain the key again (a rebuild here, or by a daemon or another
host), ``fail`` raises :class:`~.errors.CorruptArtifactError` with the
command that rebuilds it.
"""

from __future__ import annotations

import errno
import logging
import time
from dataclasses import dataclass
from typing import Literal

from ..cache.lease import Lease, take_lease
from ..cache.store import Artifact, Cache
from ..cache.verify import corruption, quarantine, read_checked
from ..errors import CorruptArtifactError, WaitTimeoutError
from ..settings import StartupPolicy
from .demand import Demand
from .wait import build_command, obtain

__all__ = ["Checkout", "checkout", "is_read_only_error"]

logger = logging.getLogger("reflex_buildd")

# A rebuilt artifact that is corrupt again points at the disk or the builder,
# not at bad luck: stop instead of rebuilding forever.
_MAX_CORRUPT = 2
# Obtained, then gone before the lease (gc, quarantine): obtain again, a few times.
_MAX_ROUNDS = 20
_READ_ONLY_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
_said_read_only: set[str] = set()


@dataclass(frozen=True)
class Checkout:
    """A leased artifact, the verified bytes of its files, and what it cost.

    Attributes:
        artifact: The artifact (its manifest as read under the lease).
        contents: Every file of the artifact, read once and verified.
        lease: The lease, or None when the cache is read-only.
        verify_seconds: Time spent reading and hashing the files.
    """

    artifact: Artifact
    contents: dict[str, bytes]
    lease: Lease | None
    verify_seconds: float


def is_read_only_error(exc: OSError) -> bool:
    """Whether ``exc`` says this process may not write where it tried."""
    return exc.errno in _READ_ONLY_ERRNOS


def _lease(cache: Cache, key: str) -> Lease | Literal[False] | None:
    """The lease of ``key``; None if the cache is read-only; False if the artifact is gone."""
    try:
        lease = take_lease(cache, key)
    except OSError as exc:
        if not is_read_only_error(exc):
            raise
        if str(cache.root) not in _said_read_only:
            _said_read_only.add(str(cache.root))
            logger.warning(
                "reflex-buildd: the cache %s is read-only here (%s): serving without a "
                "lease, so a gc elsewhere cannot see that this host uses it",
                cache.root,
                exc.strerror,
            )
        return None if cache.has_manifest(key) else False
    return False if lease is None else lease


def _corrupt(
    demand: Demand, artifact: Artifact | None, exc: CorruptArtifactError, bad: list[str]
) -> None:
    cache, key, policy, project = demand.cache, demand.key, demand.policy, demand.project
    try:
        where = quarantine(
            cache,
            key,
            reason=str(exc),
            manifest=artifact.manifest if artifact is not None else None,
            bad_files=bad,
        )
    except OSError as error:
        if not is_read_only_error(error):
            raise
        # Nobody here can move it aside or rebuild it: say so, whatever the policy.
        raise CorruptArtifactError(
            f"{exc}; the cache {cache.root} is read-only here, so it can be neither "
            f"quarantined nor rebuilt: run reflex-buildd verify --cache-dir {cache.root} "
            "where it is writable"
        ) from exc
    moved = f"; moved to {where}" if where is not None else ""
    if policy is StartupPolicy.FAIL:
        raise CorruptArtifactError(
            f"{exc}{moved}; rebuild it with: {build_command(cache, project)}"
        ) from exc
    logger.warning("reflex-buildd: %s%s; obtaining it again", exc, moved)


def checkout(demand: Demand) -> Checkout:
    """Obtain the demanded artifact (wait/build/fail per its policy), lease it, read it verified.

    The manifest is parsed once on a hit: under the lease, the manifest file is checked to
    be the one :func:`~.wait.obtain` read (same inode and mtime); only an artifact replaced
    meanwhile (quarantined and rebuilt elsewhere) is read again.

    Raises:
        CorruptArtifactError: The artifact is corrupt and the policy is
            ``fail``, or it came out corrupt again after a rebuild.
        WaitTimeoutError: The artifact kept vanishing between obtaining and leasing.
        Whatever :func:`~.wait.obtain` raises (build failed, missing, timeout).
    """
    cache, key = demand.cache, demand.key
    corrupt = 0
    for _ in range(_MAX_ROUNDS):
        artifact: Artifact | None = None
        problems: dict[str, str] = {}
        error: CorruptArtifactError | None = None
        lease: Lease | Literal[False] | None = None
        try:
            # obtain reads the manifest first: a malformed one is handled below.
            obtained, _built = obtain(demand)
            lease = _lease(cache, key)
            if lease is False:
                continue  # evicted or quarantined between the two: obtain again
            # Under the lease: what is there now stays until we release it.
            artifact = cache.still_published(obtained)
            if artifact is not None:
                started = time.perf_counter()
                contents, problems = read_checked(artifact)
                if not problems:
                    return Checkout(artifact, contents, lease, time.perf_counter() - started)
                error = corruption(artifact, problems)
        except CorruptArtifactError as exc:  # a malformed manifest
            error = exc
        except BaseException:
            if isinstance(lease, Lease):
                lease.release()
            raise
        if isinstance(lease, Lease):
            lease.release()
        if error is None:
            continue  # gone under us: obtain again
        corrupt += 1
        _corrupt(demand, artifact, error, list(problems))
        if corrupt >= _MAX_CORRUPT:
            raise CorruptArtifactError(
                f"the artifact of {key} was corrupt again after it was obtained anew: {error}"
            ) from error
    raise WaitTimeoutError(
        f"the artifact of {key} vanished {_MAX_ROUNDS} times between obtaining and leasing it "
        f"(is a gc with a tiny --max-size running in a loop?)",
        key=key,
    )
