"""The remote tier's settings, its object layout, and the one edge that talks to S3.

Any S3-compatible store (AWS S3, MinIO, R2, GCS's S3 API) through obstore, a
thin binding of Rust's ``object_store``: create-only puts (``If-None-Match:
*``), bounded timeouts and retries, and the standard ``AWS_*`` settings
(``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_REGION``, ``AWS_ALLOW_HTTP``), read by obstore itself.

Layout below ``s3://<bucket>/<prefix>/``, one folder per trust namespace
(:mod:`.namespaces`), versioned like the local cache::

    <namespace>/v1/blobs/<blake3 digest>   each file's bytes once, shared by every key
    <namespace>/v1/manifests/<key>.json    the signed manifest (envelope.py), written last

(Remotes written before namespaces existed hold ``v1/...`` directly below the
prefix; nothing reads it any more, see docs/howto-remote.md.)

Blobs are content-addressed, so a blob that exists is never sent again, and a
key exists for readers only once its manifest does, which is uploaded after
every blob and create-only: a partial upload is never an artifact, and of two
writers of one key the first wins (the second one's bytes are equivalent).

Every call has a deadline: network faults (endpoint down, timeouts, 5xx,
throttling) become :class:`~.errors.RemoteUnavailableError` within it, never a
hang; obstore retries 5xx and throttling answers with backoff inside it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypedDict, Unpack
from urllib.parse import urlsplit

from ..errors import InvalidConfigError, RemoteUnavailableError, UntrustedArtifactError
from .keyfiles import SigningKey, TrustedKey, load_signing_key, load_trusted_keys
from .namespaces import DEFAULT_NAMESPACE, namespace, namespaces
from .signing import Trust

__all__ = [
    "CHUNK_BYTES",
    "DEFAULT_REMOTE_TIMEOUT",
    "RemoteSettings",
    "RemoteStore",
    "TrustOptions",
    "blob_object",
    "manifest_object",
    "remote_settings",
]

# The remote's own layout, owned by this module (the local cache's is store.py's):
# versioned apart from it, so either can change without the other.
REMOTE_LAYOUT_VERSION = 1
LAYOUT = f"v{REMOTE_LAYOUT_VERSION}"
# A pull or push of one artifact, in all; per request see RemoteStore.
DEFAULT_REMOTE_TIMEOUT = 30.0
_REQUEST_TIMEOUT = 10.0
_CONNECT_TIMEOUT = 3.0
_MIN_KEY_CHARS = 16
# Downloads stream in chunks of this size (obstore's default is 10 MB): what a
# pull holds in memory per blob being fetched, whatever the bucket holds.
CHUNK_BYTES = 1024 * 1024


def blob_object(digest: str) -> str:
    """The object name of the bytes with blake3 ``digest``."""
    return f"{LAYOUT}/blobs/{digest}"


def manifest_object(key: str) -> str:
    """The object name of the manifest of ``key``."""
    return f"{LAYOUT}/manifests/{key}.json"


@dataclass(frozen=True)
class RemoteSettings:
    """Where the remote tier is and how it is trusted.

    Attributes:
        url: ``s3://bucket/prefix`` (the prefix may be empty).
        signing_key: The HMAC key builders sign with and hosts require, or None
            (the weaker mode: see :mod:`.signing`).
        timeout: Seconds one pull or push may take in all.
        allow_http: ``AWS_ALLOW_HTTP``: the endpoint may be plain HTTP (a local S3 server).
        namespace: The namespace this machine pushes into.
        read_namespaces: The namespaces it pulls from, in order.
        signer: The Ed25519 key it signs with, or None.
        trusted_keys: The Ed25519 public keys it accepts (when any: only those).
    """

    url: str
    signing_key: bytes | None = None
    timeout: float = DEFAULT_REMOTE_TIMEOUT
    allow_http: bool = False
    namespace: str = DEFAULT_NAMESPACE
    read_namespaces: tuple[str, ...] = (DEFAULT_NAMESPACE,)
    signer: SigningKey | None = None
    trusted_keys: tuple[TrustedKey, ...] = ()

    @property
    def trust(self) -> Trust:
        """What this machine signs with and accepts."""
        return Trust(signer=self.signer, trusted=self.trusted_keys, hmac_key=self.signing_key)

    @property
    def bucket(self) -> str:
        """The bucket name."""
        return urlsplit(self.url).netloc

    @property
    def prefix(self) -> str:
        """The key prefix inside the bucket, without slashes around it."""
        return urlsplit(self.url).path.strip("/")

    def __repr__(self) -> str:  # never print a key: the trust names fingerprints only
        return (
            f"RemoteSettings({self.url!r}, namespace={self.namespace!r}, "
            f"reads={','.join(self.read_namespaces)!r}, {self.trust.describe()}, "
            f"timeout={self.timeout})"
        )


class TrustOptions(TypedDict, total=False):
    """The trust settings of :func:`remote_settings`, as read (empty: not set).

    Attributes:
        namespace_name: The namespace pushes go to (empty: ``main``).
        read_namespaces: Comma-separated namespaces pulls read (empty: ``main``).
        signing_key_file: The Ed25519 private key file builders sign with.
        trusted_keys: Comma-separated public key files or inline keys hosts accept.
    """

    namespace_name: str
    read_namespaces: str
    signing_key_file: str
    trusted_keys: str


def remote_settings(
    url: str,
    *,
    signing_key: str | None = None,
    timeout: float = DEFAULT_REMOTE_TIMEOUT,
    allow_http: bool = False,
    **trust: Unpack[TrustOptions],
) -> RemoteSettings | None:
    """Validate the remote tier's settings (:class:`~.settings.Settings` reads them).

    Args:
        url: ``s3://bucket/prefix``; empty or ``none``: no remote.
        signing_key: The HMAC key, at least 16 characters, or None.
        timeout: Seconds one pull or push may take in all.
        allow_http: Whether the endpoint may be plain HTTP (``AWS_ALLOW_HTTP``).
        **trust: Namespaces and Ed25519 keys (:class:`TrustOptions`).

    Raises:
        InvalidConfigError: If a value is malformed, or the keys contradict
            each other (one line naming the settings).
    """
    url = url.strip()
    if not url or url.lower() == "none":
        return None
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise InvalidConfigError(
            f"REFLEX_BUILDD_REMOTE={url!r}: expected s3://bucket/prefix "
            "(endpoint and credentials come from AWS_* variables)"
        )
    if signing_key is not None and len(signing_key) < _MIN_KEY_CHARS:
        raise InvalidConfigError(
            f"REFLEX_BUILDD_SIGNING_KEY has {len(signing_key)} characters; use at least "
            f"{_MIN_KEY_CHARS} (e.g. `openssl rand -hex 32`)"
        )
    if not (timeout > 0 and math.isfinite(timeout)):  # inf overflows obstore's timedelta
        raise InvalidConfigError(
            f"REFLEX_BUILDD_REMOTE_TIMEOUT={timeout!r}: expected a finite number of seconds > 0"
        )
    key_file = trust.get("signing_key_file", "").strip()
    trusted = trust.get("trusted_keys", "")
    _one_kind_of_key(bool(signing_key), bool(key_file), bool(trusted.strip()))
    return RemoteSettings(
        url=url.rstrip("/"),
        signing_key=signing_key.encode("utf-8") if signing_key else None,
        timeout=timeout,
        allow_http=allow_http,
        namespace=namespace(trust.get("namespace_name", "")),
        read_namespaces=namespaces(trust.get("read_namespaces", "")),
        signer=load_signing_key(key_file) if key_file else None,
        trusted_keys=load_trusted_keys(trusted),
    )


def _one_kind_of_key(hmac_key: bool, key_file: bool, trusted: bool) -> None:
    # One machine, one kind: an HMAC signer whose own hosts verify Ed25519 (or
    # the reverse) would push what nobody accepts. Moving over: docs/howto-remote.md.
    if hmac_key and (key_file or trusted):
        other = "REFLEX_BUILDD_SIGNING_KEY_FILE" if key_file else "REFLEX_BUILDD_TRUSTED_KEYS"
        raise InvalidConfigError(
            f"REFLEX_BUILDD_SIGNING_KEY (HMAC) and {other} (Ed25519) are both set: "
            "use one kind of key (unset REFLEX_BUILDD_SIGNING_KEY to use Ed25519)"
        )


class RemoteStore:
    """The object store behind :class:`RemoteSettings` (the I/O edge of the tier).

    Args:
        settings: The remote.
        timeout: Seconds this store's calls may take in all (retries
            included); default ``settings.timeout``.
        namespace: The namespace whose folder this store reads and writes
            (default: ``settings.namespace``, where this machine pushes).

    Raises:
        RemoteUnavailableError: If obstore is not installed or rejects the settings.
    """

    def __init__(
        self,
        settings: RemoteSettings,
        *,
        timeout: float | None = None,
        namespace: str | None = None,
    ) -> None:
        try:
            from obstore.store import S3Store
        except ImportError as exc:  # the optional extra
            raise RemoteUnavailableError(
                "the remote tier needs obstore: pip install 'obstore>=0.12,<0.13'"
            ) from exc
        budget = max(0.1, settings.timeout if timeout is None else timeout)
        self.settings = settings
        self.namespace = settings.namespace if namespace is None else namespace
        request = min(_REQUEST_TIMEOUT, budget)
        client: Any = {
            "timeout": timedelta(seconds=request),
            "connect_timeout": timedelta(seconds=min(_CONNECT_TIMEOUT, request)),
        }
        # Client options given here replace obstore's own reading of the
        # environment, so the one client setting of the AWS_* set comes along.
        if settings.allow_http:
            client["allow_http"] = True
        retry: Any = {
            "max_retries": 3,
            "retry_timeout": timedelta(seconds=budget),
            "backoff": {
                "init_backoff": timedelta(milliseconds=100),
                "max_backoff": timedelta(seconds=2),
                "base": 2,
            },
        }
        try:
            self._store = S3Store(
                settings.bucket,
                # The namespace's folder (validated: one safe path segment).
                prefix="/".join(p for p in (settings.prefix, self.namespace) if p),
                client_options=client,
                retry_config=retry,
            )
        except Exception as exc:  # obstore's configuration errors
            raise RemoteUnavailableError(f"remote {settings.url}: {exc}") from exc

    @property
    def location(self) -> str:
        """``s3://bucket/prefix/namespace``: where this store's objects are."""
        return f"{self.settings.url}/{self.namespace}"

    def _fault(self, what: str, exc: BaseException) -> RemoteUnavailableError:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return RemoteUnavailableError(f"remote {self.location}: {what} failed: {first}")

    def get(self, name: str, *, max_bytes: int) -> bytes | None:
        """The bytes of object ``name``, or None if there is none.

        Raises:
            UntrustedArtifactError: If the object is longer than ``max_bytes``
                (at most one byte more is read).
            RemoteUnavailableError: On any other failure.
        """
        chunks: list[bytes] = []
        received = self.download(name, chunks.append, max_bytes=max_bytes)
        if received is not None and received > max_bytes:
            raise UntrustedArtifactError(
                f"remote {self.location}: {name} is longer than the {max_bytes} bytes "
                "allowed: refused",
                reason="malformed",
            )
        return None if received is None else b"".join(chunks)

    def download(
        self, name: str, write: Callable[[bytes], object], *, max_bytes: int
    ) -> int | None:
        """Stream object ``name`` into ``write``, never more than ``max_bytes + 1`` bytes.

        An object the store says is longer than ``max_bytes`` is not read at
        all; one that turns out longer while streaming (a store that lied
        about its length) stops one byte past the limit, its connection
        dropped. Memory stays at one chunk (:data:`CHUNK_BYTES`) whatever
        the object's size: Bazel's remote cache client streams and checks
        every blob the same way (size and digest, ``--remote_verify_downloads``).

        Returns:
            The bytes received (``max_bytes + 1`` or the stored length, if
            that is more: the object is too long), or None if there is no such object.

        Raises:
            RemoteUnavailableError: On any failure of the store; what
                ``write`` raises passes through unchanged.
        """
        import obstore
        from obstore.exceptions import NotFoundError

        try:
            result = obstore.get(self._store, name)
            size = int(result.meta["size"])
            chunks = iter(result.stream(min_chunk_size=CHUNK_BYTES))
        except (NotFoundError, FileNotFoundError):
            return None
        except Exception as exc:
            raise self._fault(f"GET {name}", exc) from exc
        if size > max_bytes:
            return size  # refused before a single byte of it is read
        received = 0
        while received <= max_bytes:
            try:
                chunk = next(chunks, None)
            except Exception as exc:
                raise self._fault(f"GET {name}", exc) from exc
            if chunk is None:
                break
            data = bytes(memoryview(chunk)[: max_bytes + 1 - received])
            received += len(data)
            write(data)
        return received

    def exists(self, name: str) -> bool:
        """Whether object ``name`` exists (a HEAD request)."""
        import obstore
        from obstore.exceptions import NotFoundError

        try:
            obstore.head(self._store, name)
            return True
        except (NotFoundError, FileNotFoundError):
            return False
        except Exception as exc:
            raise self._fault(f"HEAD {name}", exc) from exc

    def put_new(self, name: str, data: bytes) -> bool:
        """Create object ``name`` unless it exists; return whether this call created it."""
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        try:
            # One PUT, never multipart: If-None-Match applies to a single PUT on
            # every S3-compatible store, and artifact files are far below 5 GB.
            obstore.put(self._store, name, data, mode="create", use_multipart=False)
            return True
        except (AlreadyExistsError, PreconditionError, FileExistsError):
            return False
        except Exception as exc:
            raise self._fault(f"PUT {name}", exc) from exc

    def keys(self) -> list[str]:
        """Every key that has a manifest in the remote."""
        import obstore

        found: list[str] = []
        folder = f"{LAYOUT}/manifests/"
        try:
            for chunk in obstore.list(self._store, prefix=folder):
                for meta in chunk:
                    name = str(meta["path"]).rsplit("/", 1)[-1]
                    if name.endswith(".json"):
                        found.append(name[: -len(".json")])
        except Exception as exc:
            raise self._fault("LIST", exc) from exc
        return sorted(found)
