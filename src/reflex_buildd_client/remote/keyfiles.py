"""Ed25519 key files: make a pair, read a builder's private key, read a host's public keys.

The formats are OpenSSH's, so the usual tools read them too: the private key
is an unencrypted ``openssh-key-v1`` PEM block (``ssh-keygen -y -f KEY``
prints its public half), the public key one ``ssh-ed25519 AAAA... comment``
line, and a key is named by its fingerprint exactly as ``ssh-keygen -lf
KEY.pub`` prints it (``SHA256:`` and the unpadded base64 of the SHA-256 of
its wire form). A security team can compare fingerprints without our code.
PEM files (PKCS#8 private, SubjectPublicKeyInfo public) are read too.

Everything here fails with one line naming the setting and the file
(:class:`~reflex_buildd_client.errors.InvalidConfigError`): a private key
where a public one is expected (a host must never hold one), a public key
where a private one is expected, another kind of key, an unreadable file.

cryptography (the ``remote`` extra) is imported only here and in
:mod:`.signing`, only when a key is configured.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidConfigError, InvalidPathError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = [
    "SIGNING_KEY_FILE_VAR",
    "TRUSTED_KEYS_VAR",
    "SigningKey",
    "TrustedKey",
    "fingerprint",
    "generate_key_pair",
    "load_signing_key",
    "load_trusted_keys",
    "public_line",
]

SIGNING_KEY_FILE_VAR = "REFLEX_BUILDD_SIGNING_KEY_FILE"
TRUSTED_KEYS_VAR = "REFLEX_BUILDD_TRUSTED_KEYS"
_INLINE = "ssh-ed25519 "
# A key file is a few hundred bytes; anything far larger is not one.
_MAX_KEY_FILE = 64 * 1024


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError:  # the optional extra
        raise InvalidConfigError(
            "Ed25519 keys need the cryptography package: pip install cryptography"
        ) from None
    return serialization


def fingerprint(raw_public: bytes) -> str:
    """``SHA256:...`` of a raw 32-byte Ed25519 public key, as ``ssh-keygen -l`` prints it."""
    wire = b"".join(len(part).to_bytes(4, "big") + part for part in (b"ssh-ed25519", raw_public))
    return "SHA256:" + base64.b64encode(hashlib.sha256(wire).digest()).decode().rstrip("=")


def public_line(raw_public: bytes, comment: str = "") -> str:
    """The OpenSSH public-key line of a raw Ed25519 public key."""
    wire = b"".join(len(part).to_bytes(4, "big") + part for part in (b"ssh-ed25519", raw_public))
    line = "ssh-ed25519 " + base64.b64encode(wire).decode()
    return f"{line} {comment}" if comment else line


@dataclass(frozen=True)
class TrustedKey:
    """A public key this machine accepts signatures of.

    Attributes:
        raw: The 32 raw bytes of the public key (what equality compares).
        fingerprint: Its ``SHA256:...`` name, safe to print anywhere.
        source: Where it was configured (a file, or ``inline``).
    """

    raw: bytes
    fingerprint: str = field(compare=False)
    source: str = field(default="inline", compare=False)

    def public_key(self) -> Ed25519PublicKey:
        """The key as cryptography's object (made on use: hosts verify rarely)."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        return Ed25519PublicKey.from_public_bytes(self.raw)


@dataclass(frozen=True)
class SigningKey:
    """A builder's private Ed25519 key (never printed: its repr names the fingerprint).

    Attributes:
        private: cryptography's private key object.
        raw_public: The raw public half.
        fingerprint: The public half's ``SHA256:...`` name.
        source: The file it was read from.
    """

    private: Ed25519PrivateKey = field(repr=False, compare=False)
    raw_public: bytes
    fingerprint: str = field(compare=False)
    source: str = field(default="", compare=False)

    def __repr__(self) -> str:
        return f"SigningKey({self.fingerprint}, from {self.source!r})"


def _read_key_file(path: Path, setting: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(_MAX_KEY_FILE + 1)
    except OSError as exc:
        raise InvalidConfigError(f"{setting}: cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > _MAX_KEY_FILE:
        raise InvalidConfigError(f"{setting}: {path} is too large to be a key file")
    return data


def _raw_public(key: Any) -> bytes:
    serialization = _crypto()
    return bytes(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def _is_private(data: bytes) -> bool:
    return b"PRIVATE KEY" in data


def load_signing_key(
    path: str | os.PathLike[str], setting: str = SIGNING_KEY_FILE_VAR
) -> SigningKey:
    """Read a builder's private key.

    Raises:
        InvalidConfigError: Unreadable, a public key, not Ed25519, encrypted.
    """
    serialization = _crypto()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    where = Path(path).expanduser()
    data = _read_key_file(where, setting)
    if not _is_private(data):
        raise InvalidConfigError(
            f"{setting}={where}: not a private key (a public key? builders sign with the "
            "file `reflex-buildd keygen` wrote without .pub)"
        )
    loader = (
        serialization.load_ssh_private_key
        if b"OPENSSH PRIVATE KEY" in data
        else serialization.load_pem_private_key
    )
    try:
        key = loader(data, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidConfigError(f"{setting}={where}: unreadable private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidConfigError(
            f"{setting}={where}: a {type(key).__name__}, not an Ed25519 key "
            "(make one with `reflex-buildd keygen`)"
        )
    raw = _raw_public(key.public_key())
    return SigningKey(key, raw, fingerprint(raw), str(where))


def _public_from(data: bytes, where: str) -> bytes:
    serialization = _crypto()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    text = data.strip()
    try:
        if text.startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(text)
        else:
            key = serialization.load_ssh_public_key(b" ".join(text.split()[:2]))
    except (ValueError, TypeError, IndexError) as exc:
        raise InvalidConfigError(
            f"{TRUSTED_KEYS_VAR}: {where} is not a public key ({exc})"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidConfigError(
            f"{TRUSTED_KEYS_VAR}: {where} is a {type(key).__name__}, not an Ed25519 key"
        )
    return _raw_public(key)


def load_trusted_keys(value: str) -> tuple[TrustedKey, ...]:
    """Parse ``REFLEX_BUILDD_TRUSTED_KEYS``: comma-separated public key files or
    inline ``ssh-ed25519 AAAA...`` keys (several: rotation). Duplicates count once.

    Raises:
        InvalidConfigError: A private key (hosts must never hold one), an
            unreadable file, a key of another kind.
    """
    found: dict[bytes, TrustedKey] = {}
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        if item.startswith(_INLINE):
            raw, source = _public_from(item.encode(), "an inline key"), "inline"
        else:
            where = Path(item).expanduser()
            data = _read_key_file(where, TRUSTED_KEYS_VAR)
            if _is_private(data):
                raise InvalidConfigError(
                    f"{TRUSTED_KEYS_VAR}: {where} holds a PRIVATE key; give its public half "
                    f"({where}.pub): a machine that only verifies must never hold one"
                )
            raw, source = _public_from(data, str(where)), str(where)
        found.setdefault(raw, TrustedKey(raw, fingerprint(raw), source))
    return tuple(found.values())


def generate_key_pair(path: str | os.PathLike[str]) -> SigningKey:
    """Write a new private key to ``path`` (mode 0600) and its public key to ``path.pub``.

    Both files are created, never overwritten, and never through a symlink
    (``O_CREAT | O_EXCL``, which also refuses a dangling link): a key is never
    written somewhere an attacker pointed, nor over an existing key.

    Raises:
        InvalidPathError: ``path`` or ``path.pub`` exists (as a file or a link).
    """
    serialization = _crypto()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    where = Path(path).expanduser()
    public_path = where.with_name(where.name + ".pub")
    key = Ed25519PrivateKey.generate()
    raw = _raw_public(key.public_key())
    secret = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    for target in (where, public_path):  # refuse before writing either
        if os.path.lexists(target):
            raise InvalidPathError(f"{target} exists: not overwritten (choose another path)")
    _create(where, secret, 0o600)
    comment = f"reflex-buildd {fingerprint(raw)}"
    try:
        _create(public_path, (public_line(raw, comment) + "\n").encode(), 0o644)
    except BaseException:
        where.unlink(missing_ok=True)
        raise
    return SigningKey(key, raw, fingerprint(raw), str(where))


def _create(path: Path, data: bytes, mode: int) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), mode)
    except FileExistsError:  # appeared since the check (or a link): never followed
        raise InvalidPathError(f"{path} exists: not overwritten (choose another path)") from None
    try:
        os.fchmod(fd, mode)  # the umask may have narrowed it (never widened: 0600 stays)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
