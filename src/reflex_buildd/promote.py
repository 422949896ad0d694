"""Promote an artifact from one trust namespace to another (``reflex-buildd promote``).

The step between an untrusted build and a trusted one: pull requests build
into ``pr-<n>`` with a key of their own; the main branch's CI, holding the
``main`` key, promotes what it accepts. Promotion signs nothing it has not
checked, in this order:

1. the source namespace's manifest of KEY, against the keys trusted for that
   namespace (``REFLEX_BUILDD_TRUSTED_KEYS``, or ``--trusted-keys``): the
   signature, that it is KEY's manifest, that its inputs hash to KEY, its paths;
2. the recipe: the manifest's build settings (the digest of the builder's own
   recipe files, the sentinel, the build settings version) equal this
   reflex-buildd's, so only a build made by the builder the promoter runs is
   promoted; with ``--project``, also that the promoter's own checkout keys to KEY;
3. every file, downloaded from the source namespace into a scratch cache and
   checked against its digest (the local cache is never trusted for this);

then pushes those verified bytes into the target namespace (blobs it lacks,
the manifest last, create-only) signed with the promoter's Ed25519 key for the
target namespace and KEY.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass

from reflex_buildd_client.cache.store import Cache
from reflex_buildd_client.errors import (
    ArtifactMissingError,
    InvalidConfigError,
    PushRefusedError,
    UntrustedArtifactError,
)
from reflex_buildd_client.inputs.sources import expected_build_settings
from reflex_buildd_client.keys.schema import KeyInputs
from reflex_buildd_client.remote.bucket import RemoteSettings
from reflex_buildd_client.remote.keyfiles import SIGNING_KEY_FILE_VAR, TRUSTED_KEYS_VAR
from reflex_buildd_client.remote.pull import pull

from .push import PushReport, push_artifact

__all__ = ["PromoteRequest", "check_recipe", "promote"]


@dataclass(frozen=True)
class PromoteRequest:
    """One promotion.

    Attributes:
        key: The full key.
        source: The namespace it is taken from.
        target: The namespace it is signed for and pushed into.
        project_key: The key of the promoter's own checkout, which KEY must
            equal (None: not checked).
    """

    key: str
    source: str
    target: str
    project_key: str | None = None


def check_recipe(inputs: KeyInputs, key: str) -> None:
    """Refuse a manifest whose build settings are not this builder's.

    Raises:
        UntrustedArtifactError: Another recipe (another reflex-buildd, or a changed one).
    """
    ours = expected_build_settings()
    theirs = inputs.settings
    differ = sorted(name for name in set(ours) | set(theirs) if ours.get(name) != theirs.get(name))
    if differ:
        raise UntrustedArtifactError(
            f"artifact {key} was built with another recipe ({', '.join(differ)} differ from this "
            "reflex-buildd's): not promoted",
            reason="other-recipe",
        )


def _check_request(settings: RemoteSettings, request: PromoteRequest) -> None:
    if request.source == request.target:
        raise InvalidConfigError(f"--from and --to are both {request.source!r}: nothing to promote")
    if settings.signer is None:
        raise PushRefusedError(
            f"promote signs for namespace {request.target!r} with the promoter's key: set "
            f"{SIGNING_KEY_FILE_VAR}"
        )
    if not settings.trusted_keys:
        raise InvalidConfigError(
            f"promote verifies namespace {request.source!r} first: set {TRUSTED_KEYS_VAR} "
            "(or --trusted-keys) to the public keys of its builders"
        )
    if request.project_key is not None and request.project_key != request.key:
        raise UntrustedArtifactError(
            f"artifact {request.key} is not the build of this checkout (its key is "
            f"{request.project_key}): not promoted",
            reason="wrong-key",
        )


def promote(cache: Cache, settings: RemoteSettings, request: PromoteRequest) -> PushReport:
    """Verify ``request.key`` in the source namespace, then sign and push it into the target.

    Args:
        cache: The local cache, whose ``tmp/`` holds the scratch download (a
            cache of its own, removed afterwards: the local artifacts are
            never what is verified or pushed).
        settings: The remote, with the promoter's signing key and the keys
            trusted for the source namespace.
        request: What to promote, from where, to where.

    Raises:
        ArtifactMissingError: The source namespace has no manifest of the key.
        UntrustedArtifactError: Any check failed; nothing was pushed.
        PushRefusedError: No signing key.
        InvalidConfigError: No trusted keys, or the same namespace twice.
        RemoteUnavailableError: On a network fault.
    """
    _check_request(settings, request)
    source = dataclasses.replace(settings, read_namespaces=(request.source,))
    target = dataclasses.replace(settings, namespace=request.target)
    cache.ensure()
    # A scratch name gc knows: it removes the folder once this process is dead.
    scratch = cache.scratch_path("promote", request.key)
    scratch.mkdir()
    try:
        verified = Cache(scratch)
        artifact = pull(verified, source, request.key)
        if artifact is None:
            raise ArtifactMissingError(
                f"no artifact {request.key} in namespace {request.source!r} of {settings.url}",
                key=request.key,
            )
        check_recipe(artifact.manifest.inputs, request.key)
        return push_artifact(verified, artifact, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
