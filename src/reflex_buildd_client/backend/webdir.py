"""A private, writable ``.web`` for a backend that serves an artifact: its markers, copied.

Reflex's backend reads its build markers (``backend/upload_is_used``,
``backend/stateful_pages.json``) from ``REFLEX_WEB_WORKDIR``, and it also
*writes* there: every start of an app that uses uploads touches
``upload_is_used`` (``App._add_optional_endpoints`` in Reflex 0.10.1). Pointed
into the artifact, that write fails on a read-only cache (``EROFS``: the
backend never starts, its routes answer 503) and, on a writable one, changes
a file that is a hard link shared with the blob store and every other
artifact holding the same bytes.

So neither backend mode points Reflex into the artifact. Each backend gets a
directory of its own (``tempfile.mkdtemp``: mode 0700, a fresh name, in the
machine's temp directory) holding a copy of the artifact's ``web/`` files, each
read without following links and checked against the manifest's digest, so
the backend sees exactly the markers the build made. Reflex may write there
as under ``reflex run``; artifact files are never opened for writing. The
directory goes when its backend stops: at the end of the host's lifespan
(uvicorn re-raises SIGTERM after a graceful shutdown, so ``atexit`` alone
would never run), and at exit for hosts that never shut the lifespan down.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import blake3

from ..cache.store import WEB_DIR, Artifact
from ..errors import CorruptArtifactError

__all__ = ["PrivateWebDir"]

_PREFIX = WEB_DIR + "/"


def _read_checked(artifact: Artifact, rel: str) -> bytes:
    entry = artifact.manifest.files[rel]
    try:
        fd = os.open(artifact.path / rel, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise CorruptArtifactError(
            f"artifact {artifact.key}: {rel} cannot be read ({exc.strerror})"
        ) from exc
    with os.fdopen(fd, "rb") as stream:
        data = stream.read(entry.size + 1)
    if len(data) != entry.size or blake3.blake3(data).hexdigest() != entry.digest:
        raise CorruptArtifactError(f"artifact {artifact.key}: {rel} does not match its digest")
    return data


class PrivateWebDir:
    """A private directory with a copy of ``artifact``'s ``web/`` files, made on demand.

    Args:
        artifact: The artifact whose backend markers the backend must see.
    """

    def __init__(self, artifact: Artifact) -> None:
        self._artifact = artifact
        self._path: Path | None = None

    def open(self) -> Path:
        """The directory, made (fresh: a new private name) if there is none now.

        Raises:
            CorruptArtifactError: If a marker does not match the manifest.
            OSError: If the temp directory cannot be made or written.
        """
        if self._path is not None and self._path.is_dir():
            return self._path
        artifact = self._artifact
        path = Path(tempfile.mkdtemp(prefix=f"reflex-buildd-web-{artifact.key[:12]}-"))
        self._path = path
        try:
            for rel in sorted(artifact.manifest.files):
                if not rel.startswith(_PREFIX):
                    continue
                target = path / rel[len(_PREFIX) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(_read_checked(artifact, rel))
        except BaseException:
            self.remove()
            raise
        return path

    def remove(self) -> None:
        """Remove the directory and what the backend wrote there (idempotent)."""
        path, self._path = self._path, None
        if path is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(path)
