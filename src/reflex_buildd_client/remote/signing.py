"""Pure: what a remote manifest's signature covers, how it is made, and every check on it.

A signature covers three things, so that a manifest cannot be replayed
anywhere else: its canonical bytes, the key it is stored under, and the
namespace it is stored in. The signed message is

    ``reflex-buildd remote manifest v2\\n`` + ``{"key":...,"namespace":...}`` + ``\\n`` + canonical bytes

and the checking side rebuilds it from the key it asked for and the namespace
it read, never from what the object claims: a manifest copied into another
namespace (or renamed to another key) no longer verifies.

Two kinds (:class:`Trust` says which this machine makes and accepts):

- **Ed25519** (``REFLEX_BUILDD_SIGNING_KEY_FILE`` signs,
  ``REFLEX_BUILDD_TRUSTED_KEYS`` verifies): asymmetric, so a host that
  verifies holds nothing that can sign. Several trusted keys: rotation.
- **HMAC-SHA256** (``REFLEX_BUILDD_SIGNING_KEY``, the older, weaker mode):
  one shared secret signs and verifies, so every host that checks could forge.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from ..errors import PushRefusedError, UntrustedArtifactError
from .keyfiles import SIGNING_KEY_FILE_VAR, TRUSTED_KEYS_VAR, SigningKey, TrustedKey, fingerprint

__all__ = ["Trust", "hmac_key_id", "signed_message"]

_CONTEXT = b"reflex-buildd remote manifest v2\n"
ED25519 = "ed25519"
HMAC = "hmac-sha256"


def signed_message(canonical: bytes, key: str, namespace: str) -> bytes:
    """The bytes a signature covers: the manifest's canonical bytes, its key, its namespace."""
    where = json.dumps({"key": key, "namespace": namespace}, sort_keys=True, separators=(",", ":"))
    return _CONTEXT + where.encode("ascii") + b"\n" + canonical


def hmac_key_id(secret: bytes) -> str:
    """A short public name of an HMAC key, so errors can say *which* key signed."""
    return hashlib.sha256(b"reflex-buildd key id\n" + secret).hexdigest()[:12]


def _where(key: str, namespace: str) -> str:
    return f"remote artifact {key} in namespace {namespace!r}"


@dataclass(frozen=True)
class Trust:
    """What this machine signs with and what it accepts (never printed with its secrets).

    Attributes:
        signer: The Ed25519 private key it signs with, or None.
        trusted: The Ed25519 public keys it accepts; when any is set, only
            their signatures count (HMAC and unsigned manifests are refused).
        hmac_key: The shared HMAC secret (the weaker mode), or None.
    """

    signer: SigningKey | None = None
    trusted: tuple[TrustedKey, ...] = ()
    hmac_key: bytes | None = None

    def __repr__(self) -> str:
        return f"Trust({self.describe()})"

    # -- describing (status, errors): fingerprints and key ids only ------------

    def trusted_names(self) -> str:
        """The fingerprints this machine trusts, comma-separated."""
        return ", ".join(k.fingerprint for k in self.trusted)

    def verifies(self) -> str:
        """What a manifest must carry to be accepted here, in words."""
        if self.trusted:
            return f"Ed25519 by {self.trusted_names()}"
        if self.hmac_key is not None:
            return f"HMAC key id {hmac_key_id(self.hmac_key)} (the weaker, shared-secret mode)"
        return "nothing (unsigned: digests and keys are checked, not who wrote them)"

    def signs(self) -> str:
        """What this machine's pushes carry, in words (or why it never pushes)."""
        if (refusal := self.push_refusal()) is not None:
            return f"never pushes ({refusal})"
        if self.signer is not None:
            return f"Ed25519 {self.signer.fingerprint}"
        if self.hmac_key is not None:
            return f"HMAC key id {hmac_key_id(self.hmac_key)}"
        return "unsigned"

    def describe(self) -> str:
        """One line: what it verifies and what it signs."""
        return f"verifies {self.verifies()}; signs {self.signs()}"

    # -- signing ----------------------------------------------------------------

    def push_refusal(self) -> str | None:
        """Why this machine must not push (it holds only public keys), or None."""
        if self.trusted and self.signer is None:
            return (
                f"this machine holds only public keys ({TRUSTED_KEYS_VAR}) and no "
                f"{SIGNING_KEY_FILE_VAR}: it verifies, it never pushes"
            )
        return None

    def sign(self, canonical: bytes, key: str, namespace: str) -> dict[str, Any] | None:
        """The signature of a manifest stored as ``key`` in ``namespace`` (None: unsigned).

        Raises:
            PushRefusedError: This machine holds only public keys.
        """
        if (refusal := self.push_refusal()) is not None:
            raise PushRefusedError(refusal)
        message = signed_message(canonical, key, namespace)
        if self.signer is not None:
            value = self.signer.private.sign(message)
            return {
                "alg": ED25519,
                "key_id": self.signer.fingerprint,
                "public_key": base64.b64encode(self.signer.raw_public).decode("ascii"),
                "value": base64.b64encode(value).decode("ascii"),
            }
        if self.hmac_key is not None:
            return {
                "alg": HMAC,
                "key_id": hmac_key_id(self.hmac_key),
                "value": hmac.new(self.hmac_key, message, hashlib.sha256).hexdigest(),
            }
        return None

    # -- checking ---------------------------------------------------------------

    def check(self, signature: Any, canonical: bytes, key: str, namespace: str) -> str | None:
        """Accept the manifest stored as ``key`` in ``namespace``, or refuse it.

        Returns:
            The signer's name (a fingerprint or HMAC key id), None when unsigned
            and nothing is required.

        Raises:
            UntrustedArtifactError: The message names the signer it saw and
                what this machine trusts (never a secret).
        """
        if self.trusted:
            return self._check_ed25519(signature, canonical, key, namespace)
        if self.hmac_key is not None:
            return self._check_hmac(signature, canonical, key, namespace)
        return None

    def _check_ed25519(self, signature: Any, canonical: bytes, key: str, namespace: str) -> str:
        wanted = f"this host trusts only {self.trusted_names()}"
        if not isinstance(signature, dict):
            raise UntrustedArtifactError(
                f"{_where(key, namespace)} is unsigned; {wanted}: refused", reason="unsigned"
            )
        alg = signature.get("alg")
        if alg != ED25519:
            seen = f"{alg} key id {signature.get('key_id')!r}" if alg == HMAC else repr(alg)
            raise UntrustedArtifactError(
                f"{_where(key, namespace)} is signed by {seen}, not Ed25519; {wanted}: refused",
                reason="untrusted-signer",
            )
        try:
            raw = base64.b64decode(str(signature.get("public_key", "")), validate=True)
            value = base64.b64decode(str(signature.get("value", "")), validate=True)
        except (binascii.Error, ValueError):
            raw, value = b"", b""
        if len(raw) != 32 or len(value) != 64:
            raise UntrustedArtifactError(
                f"{_where(key, namespace)} has a malformed Ed25519 signature; {wanted}: refused",
                reason="bad-signature",
            )
        seen = fingerprint(raw)
        match = next((k for k in self.trusted if k.raw == raw), None)
        if match is None:
            raise UntrustedArtifactError(
                f"{_where(key, namespace)} is signed by {seen}, which this host does not "
                f"trust ({wanted}): refused",
                reason="untrusted-signer",
            )
        from cryptography.exceptions import InvalidSignature

        try:
            match.public_key().verify(value, signed_message(canonical, key, namespace))
        except InvalidSignature:
            raise UntrustedArtifactError(
                f"{_where(key, namespace)} carries a signature of {seen} that is not for this "
                "key and namespace (replayed from another key or namespace, or changed after "
                "signing): refused",
                reason="bad-signature",
            ) from None
        return seen

    def _check_hmac(self, signature: Any, canonical: bytes, key: str, namespace: str) -> str:
        assert self.hmac_key is not None
        ours = hmac_key_id(self.hmac_key)
        if not isinstance(signature, dict):
            raise UntrustedArtifactError(
                f"{_where(key, namespace)} is unsigned and REFLEX_BUILDD_SIGNING_KEY is set: refused",
                reason="unsigned",
            )
        value = signature.get("value")
        if signature.get("alg") != HMAC or not isinstance(value, str):
            raise UntrustedArtifactError(
                f"{_where(key, namespace)} is signed by {signature.get('alg')!r} key "
                f"{signature.get('key_id')!r}, not by this host's HMAC key id {ours!r}: refused",
                reason="untrusted-signer",
            )
        expected = hmac.new(
            self.hmac_key, signed_message(canonical, key, namespace), hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(value, expected):
            raise UntrustedArtifactError(
                f"{_where(key, namespace)} is not signed by this host's key (signed by key id "
                f"{signature.get('key_id')!r}, ours is {ours!r}; or replayed from another key "
                "or namespace, or changed after signing): refused",
                reason="bad-signature",
            )
        return ours
