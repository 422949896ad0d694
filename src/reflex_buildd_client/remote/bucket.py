"""The remote tier's settings, its object layout, and the one edge that talks to S3.

Any S3-compatible store (AWS S3, MinIO, R2, GCS's S3 API) through obstore, a
thin binding of Rust's ``object_store``: create-only puts (``If-None-Match:
*``), bounded timeouts and retries, and the standard ``AWS_*`` settings
(``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_REGION``, ``AWS_ALLOW_HTTP``), read by obstore itself.

Layout below ``s3://<bucket>/<prefix>/`` (versioned like the local cache)::

    v1/blobs/<blake3 digest>        each file's bytes once, shared by every key
    v1/manifests/<key>.json         the signed manifest (envelope.py), written last

Blobs are content-addressed, so a blob that exists is never sent again, and a
key exists for readers only once its manifest does, which is uploaded after
every blob and create-only: a partial upload is never an artifact, and of two
writers of one key the first wins (the second one's bytes are equivalent).

Every call has a deadline: network faults (endpoint down, timeouts, 5xx,
throttling) become :class:`~.errors.RemoteUnavailableError` within it, never a
hang; obstore retries 5xx and throttling answers with backoff inside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from ..errors import InvalidConfigError, RemoteUnavailableError

__all__ = [
    "DEFAULT_REMOTE_TIMEOUT",
    "RemoteSettings",
    "RemoteStore",
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
        signing_key: The HMAC key builders sign with and hosts require, or None.
        timeout: Seconds one pull or push may take in all.
        allow_http: ``AWS_ALLOW_HTTP``: the endpoint may be plain HTTP (a local S3 server).
    """

    url: str
    signing_key: bytes | None = None
    timeout: float = DEFAULT_REMOTE_TIMEOUT
    allow_http: bool = False

    @property
    def bucket(self) -> str:
        """The bucket name."""
        return urlsplit(self.url).netloc

    @property
    def prefix(self) -> str:
        """The key prefix inside the bucket, without slashes around it."""
        return urlsplit(self.url).path.strip("/")

    def __repr__(self) -> str:  # never print the key
        signed = "signed" if self.signing_key else "unsigned"
        return f"RemoteSettings({self.url!r}, {signed}, timeout={self.timeout})"


def remote_settings(
    url: str,
    *,
    signing_key: str | None = None,
    timeout: float = DEFAULT_REMOTE_TIMEOUT,
    allow_http: bool = False,
) -> RemoteSettings | None:
    """Validate the remote tier's settings (:class:`~.settings.Settings` reads them).

    Args:
        url: ``s3://bucket/prefix``; empty or ``none``: no remote.
        signing_key: The HMAC key, at least 16 characters, or None.
        timeout: Seconds one pull or push may take in all.
        allow_http: Whether the endpoint may be plain HTTP (``AWS_ALLOW_HTTP``).

    Raises:
        InvalidConfigError: If a value is malformed.
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
    if not timeout > 0:
        raise InvalidConfigError(f"REFLEX_BUILDD_REMOTE_TIMEOUT={timeout!r}: expected seconds > 0")
    return RemoteSettings(
        url=url.rstrip("/"),
        signing_key=signing_key.encode("utf-8") if signing_key else None,
        timeout=timeout,
        allow_http=allow_http,
    )


class RemoteStore:
    """The object store behind :class:`RemoteSettings` (the I/O edge of the tier).

    Args:
        settings: The remote.
        timeout: Seconds this store's calls may take in all (retries
            included); default ``settings.timeout``.

    Raises:
        RemoteUnavailableError: If obstore is not installed or rejects the settings.
    """

    def __init__(self, settings: RemoteSettings, *, timeout: float | None = None) -> None:
        try:
            from obstore.store import S3Store
        except ImportError as exc:  # the optional extra
            raise RemoteUnavailableError(
                "the remote tier needs obstore: pip install 'reflex-buildd[remote]'"
            ) from exc
        budget = max(0.1, settings.timeout if timeout is None else timeout)
        self.settings = settings
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
                prefix=settings.prefix or None,
                client_options=client,
                retry_config=retry,
            )
        except Exception as exc:  # obstore's configuration errors
            raise RemoteUnavailableError(f"remote {settings.url}: {exc}") from exc

    def _fault(self, what: str, exc: BaseException) -> RemoteUnavailableError:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return RemoteUnavailableError(f"remote {self.settings.url}: {what} failed: {first}")

    def get(self, name: str) -> bytes | None:
        """The bytes of object ``name``, or None if there is none.

        Raises:
            RemoteUnavailableError: On any other failure.
        """
        import obstore
        from obstore.exceptions import NotFoundError

        try:
            return bytes(obstore.get(self._store, name).bytes())
        except (NotFoundError, FileNotFoundError):
            return None
        except Exception as exc:
            raise self._fault(f"GET {name}", exc) from exc

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
