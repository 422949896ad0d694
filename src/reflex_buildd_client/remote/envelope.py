"""Pure: the signed form of a manifest in the remote tier, and every check made on it.

A remote manifest is one JSON object, ``{"format", "manifest", "signature"}``:
the artifact's manifest exactly as the local cache stores it, and an HMAC-SHA256
over its canonical bytes (sorted keys, fixed separators, ASCII), domain-separated
so the tag cannot be replayed as anything else. The signature travels *inside*
the one object that is written last and create-only, so a manifest and its
signature can never come from two different writers.

What :func:`open_envelope` refuses, whatever the signing setting (anyone who
can write to the bucket is a possible attacker, see Nx's CVE-2025-36852):

- a manifest whose key is not the object's key, or whose recorded inputs do
  not hash to that key (it describes other sources);
- file paths that could leave the artifact directory (``..``, absolute,
  backslashes, NUL) or name its manifest, and digests that are not blake3 hex;
- with a signing key: no signature, or a signature by another key.

Without a signing key nothing proves *who* wrote the manifest: its file
digests are checked on download, but a writer may point them at bytes of its
own. Hence the how-to: sign, and let only trusted builders write.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

from ..cache.manifest import Manifest
from ..cache.store import MANIFEST_NAME, PUBLIC_DIR, WEB_DIR
from ..errors import CorruptArtifactError, UntrustedArtifactError
from ..keys.schema import key_of

__all__ = ["ENVELOPE_FORMAT", "key_id", "open_envelope", "seal", "signature_of"]

ENVELOPE_FORMAT = 1
_CONTEXT = b"reflex-buildd remote manifest v1\n"
_ALG = "hmac-sha256"
_DIGEST = re.compile(r"[0-9a-f]{64}")
_TOP_DIRS = (PUBLIC_DIR, WEB_DIR)


def _canonical(manifest_json: dict[str, Any]) -> bytes:
    return json.dumps(
        manifest_json, sort_keys=True, separators=(",", ":"), ensure_ascii=True
    ).encode("ascii")


def signature_of(manifest_json: dict[str, Any], signing_key: bytes) -> str:
    """The HMAC-SHA256 (hex) of a manifest's canonical bytes."""
    return hmac.new(signing_key, _CONTEXT + _canonical(manifest_json), hashlib.sha256).hexdigest()


def key_id(signing_key: bytes) -> str:
    """A short public name of a signing key, so errors can say *which* key signed."""
    return hashlib.sha256(b"reflex-buildd key id\n" + signing_key).hexdigest()[:12]


def seal(manifest: Manifest, signing_key: bytes | None) -> bytes:
    """The remote object for ``manifest``: signed when a key is given."""
    body = manifest.to_json()
    signature = None
    if signing_key is not None:
        signature = {
            "alg": _ALG,
            "key_id": key_id(signing_key),
            "value": signature_of(body, signing_key),
        }
    envelope = {"format": ENVELOPE_FORMAT, "manifest": body, "signature": signature}
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode("ascii")


def _check_signature(key: str, envelope: dict[str, Any], signing_key: bytes) -> None:
    signature = envelope.get("signature")
    if not isinstance(signature, dict):
        raise UntrustedArtifactError(
            f"remote artifact {key} is unsigned and REFLEX_BUILDD_SIGNING_KEY is set: refused"
        )
    value = signature.get("value")
    expected = signature_of(envelope["manifest"], signing_key)
    if signature.get("alg") != _ALG or not isinstance(value, str):
        raise UntrustedArtifactError(
            f"remote artifact {key} has a signature of an unknown kind: refused"
        )
    if not hmac.compare_digest(value, expected):
        by = signature.get("key_id")
        raise UntrustedArtifactError(
            f"remote artifact {key} is not signed by this host's key (signed by key id "
            f"{by!r}, ours is {key_id(signing_key)!r}; or the manifest was changed after "
            "signing): refused"
        )


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


def open_envelope(data: bytes, key: str, signing_key: bytes | None) -> Manifest:
    """Parse and check the remote manifest of ``key`` (see the module doc).

    Raises:
        UntrustedArtifactError: If any check fails; the message says which.
    """
    try:
        envelope = json.loads(data)
        if not isinstance(envelope, dict) or envelope.get("format") != ENVELOPE_FORMAT:
            raise ValueError("not a reflex-buildd remote manifest of a known format")
        if not isinstance(envelope.get("manifest"), dict):
            raise ValueError("no manifest in it")
    except ValueError as exc:
        raise UntrustedArtifactError(f"remote manifest of {key} is unreadable: {exc}") from exc
    if signing_key is not None:
        _check_signature(key, envelope, signing_key)
    try:
        manifest = Manifest.from_json(envelope["manifest"])
    except CorruptArtifactError as exc:
        raise UntrustedArtifactError(f"remote manifest of {key} is malformed: {exc}") from exc
    if manifest.key != key:
        raise UntrustedArtifactError(
            f"remote manifest stored as {key} is the manifest of {manifest.key}: refused"
        )
    if key_of(manifest.inputs) != key:
        raise UntrustedArtifactError(
            f"remote manifest of {key} records inputs whose key is {key_of(manifest.inputs)} "
            "(it describes other sources): refused"
        )
    for rel, entry in manifest.files.items():
        if not _safe_rel(rel):
            raise UntrustedArtifactError(
                f"remote manifest of {key} names a file outside the artifact: {rel!r}: refused"
            )
        if not _DIGEST.fullmatch(entry.digest) or entry.size < 0:
            raise UntrustedArtifactError(
                f"remote manifest of {key} has a malformed entry for {rel!r}: refused"
            )
    return manifest
