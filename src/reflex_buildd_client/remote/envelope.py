"""Pure: the signed form of a manifest in the remote tier, and every check made on it.

A remote manifest is one JSON object, ``{"format", "manifest", "signature"}``:
the artifact's manifest exactly as the local cache stores it, and a signature
over its canonical bytes (sorted keys, fixed separators, ASCII), its key and
its namespace (:mod:`.signing`: Ed25519, or the older HMAC). The signature
travels *inside* the one object that is written last and create-only, so a
manifest and its signature can never come from two different writers.

What :func:`open_envelope` refuses, whatever the signing setting (anyone who
can write to the bucket is a possible attacker, see Nx's CVE-2025-36852):

- a manifest whose key is not the object's key, or whose recorded inputs do
  not hash to that key (it describes other sources);
- file paths that could leave the artifact directory (``..``, absolute,
  backslashes, NUL) or name its manifest, and digests that are not blake3 hex;
- with trusted keys (or an HMAC key): no signature, a signature by a key not
  trusted, or one made for another key or namespace.

Without any key nothing proves *who* wrote the manifest: its file digests are
checked on download, but a writer may point them at bytes of its own. Hence
the how-to: sign, and let only trusted builders write.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..cache.manifest import Manifest, load_manifest_json
from ..cache.store import MANIFEST_NAME, PUBLIC_DIR, WEB_DIR
from ..errors import CorruptArtifactError, UntrustedArtifactError
from ..keys.schema import key_of
from .signing import Trust

__all__ = ["ENVELOPE_FORMAT", "Opened", "open_envelope", "seal"]

ENVELOPE_FORMAT = 1
_DIGEST = re.compile(r"[0-9a-f]{64}")
_TOP_DIRS = (PUBLIC_DIR, WEB_DIR)


def _canonical(manifest_json: dict[str, Any]) -> bytes:
    return json.dumps(
        manifest_json, sort_keys=True, separators=(",", ":"), ensure_ascii=True
    ).encode("ascii")


def seal(manifest: Manifest, trust: Trust, namespace: str) -> bytes:
    """The remote object for ``manifest`` in ``namespace``: signed as ``trust`` signs.

    Raises:
        PushRefusedError: ``trust`` holds only public keys.
    """
    body = manifest.to_json()
    signature = trust.sign(_canonical(body), manifest.key, namespace)
    envelope = {"format": ENVELOPE_FORMAT, "manifest": body, "signature": signature}
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode("ascii")


@dataclass(frozen=True)
class Opened:
    """A remote manifest that passed every check.

    Attributes:
        manifest: The manifest.
        signer: Who signed it (a fingerprint or an HMAC key id; None: unsigned).
    """

    manifest: Manifest
    signer: str | None


def _safe_rel(rel: str) -> bool:
    parts = rel.split("/")
    return (
        "\\" not in rel
        and "\x00" not in rel
        and len(parts) >= 2
        and parts[0] in _TOP_DIRS
        and all(part not in ("", ".", "..") for part in parts)
        and rel != MANIFEST_NAME
    )


def open_envelope(data: bytes, key: str, trust: Trust, namespace: str) -> Opened:
    """Parse and check the remote manifest of ``key`` read from ``namespace`` (see the module doc).

    Raises:
        UntrustedArtifactError: If any check fails; the message says which.
    """
    try:
        envelope = load_manifest_json(data)  # size and depth limits before anything else
        if not isinstance(envelope, dict) or envelope.get("format") != ENVELOPE_FORMAT:
            raise ValueError("not a reflex-buildd remote manifest of a known format")
        if not isinstance(envelope.get("manifest"), dict):
            raise ValueError("no manifest in it")
    except ValueError as exc:  # CorruptArtifactError too (the size and depth limits)
        raise UntrustedArtifactError(
            f"remote manifest of {key} refused: unreadable: {exc}", reason="malformed"
        ) from None
    signer = trust.check(
        envelope.get("signature"), _canonical(envelope["manifest"]), key, namespace
    )
    try:
        manifest = Manifest.from_json(envelope["manifest"])
    except CorruptArtifactError as exc:
        raise UntrustedArtifactError(
            f"remote manifest of {key} refused: {exc}", reason="malformed"
        ) from exc
    if manifest.key != key:
        raise UntrustedArtifactError(
            f"remote manifest stored as {key} is the manifest of {manifest.key}: refused",
            reason="wrong-key",
        )
    if key_of(manifest.inputs) != key:
        raise UntrustedArtifactError(
            f"remote manifest of {key} records inputs whose key is {key_of(manifest.inputs)} "
            "(it describes other sources): refused",
            reason="other-inputs",
        )
    for rel, entry in manifest.files.items():
        if not _safe_rel(rel):
            raise UntrustedArtifactError(
                f"remote manifest of {key} names a file outside the artifact: {rel!r}: refused",
                reason="unsafe-path",
            )
        if not _DIGEST.fullmatch(entry.digest) or entry.size < 0:
            raise UntrustedArtifactError(
                f"remote manifest of {key} has a malformed entry for {rel!r}: refused",
                reason="malformed",
            )
    return Opened(manifest, signer)
