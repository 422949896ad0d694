"""A persistent stat cache: re-key an unchanged tree without reading it.

Each entry maps a project-relative path to the stat identity it had when it was
hashed (size, mtime_ns, inode, ctime_ns), the time the entry was recorded, the
content digest, and the top-level names the file imports (for ``.py`` files, so
the import graph needs no reads either).

The racy-git problem: a file written twice within the filesystem's timestamp
granularity (1-2 s on FAT, HFS+, some NFS; a scheduler tick on ext4) can keep
the same stat identity with different content. As git does with its index, an
entry whose mtime or ctime is not safely older than the moment it was recorded
is *racy*: it is never trusted, the file is re-hashed, and the new entry gets a
later recording time, so it stops being racy once the file stops changing.

The file is a cache: unreadable or malformed means empty, and a failed write is
ignored. Writers replace it atomically, so concurrent keyers lose at most some
entries to the last writer.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RACY_WINDOW_NS", "CacheEntry", "StatCache", "stat_identity"]

# Coarser than any local filesystem's timestamp granularity (FAT: 2 s), plus
# headroom for a file server's clock. A file changed within this window before
# it was hashed is re-hashed on the next key; that costs a read, never a wrong key.
RACY_WINDOW_NS = 3_000_000_000

_FORMAT = 1

StatIdentity = tuple[int, int, int, int]


def stat_identity(st: os.stat_result) -> StatIdentity:
    """(size, mtime_ns, inode, ctime_ns): what must be unchanged to trust a digest."""
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


@dataclass(frozen=True)
class CacheEntry:
    """What the stat cache knows about one file."""

    identity: StatIdentity
    recorded_ns: int
    digest: str
    imports: tuple[str, ...] | None = None

    def to_json(self) -> list[Any]:
        """Compact list form used in the file."""
        imports = None if self.imports is None else list(self.imports)
        return [*self.identity, self.recorded_ns, self.digest, imports]

    @classmethod
    def from_json(cls, data: list[Any]) -> CacheEntry:
        """Parse :meth:`to_json` output (raises on malformed data)."""
        size, mtime_ns, ino, ctime_ns, recorded_ns, digest, imports = data
        return cls(
            identity=(int(size), int(mtime_ns), int(ino), int(ctime_ns)),
            recorded_ns=int(recorded_ns),
            digest=str(digest),
            imports=None if imports is None else tuple(str(i) for i in imports),
        )


# path -> (stat signature of the file, its entries): see StatCache._load.
_loaded: dict[str, tuple[tuple[int, int, int], dict[str, list[Any]]]] = {}


class StatCache:
    """The stat cache of one project, loaded from and saved to ``path``.

    Args:
        path: The cache file, or None for a cache that lives only in memory.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        # Kept in the stored list form: building 5,000 objects would cost a
        # warm key more than its stats do.
        self._raw: dict[str, list[Any]] = {}
        self.dirty = False
        # Counters, for tests and the benchmark.
        self.hits = 0
        self.misses = 0
        self.racy = 0
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        # A daemon re-keys the same project again and again: reuse what this
        # process last read or wrote while the file on disk is unchanged.
        try:
            st = path.stat()
        except OSError:
            return
        signature = (st.st_mtime_ns, st.st_size, st.st_ino)
        remembered = _loaded.get(str(path))
        if remembered is not None and remembered[0] == signature:
            self._raw = dict(remembered[1])
            return
        try:
            data = json.loads(path.read_bytes())
            if data.get("format") != _FORMAT:
                return
            raw = data["entries"]
            if not isinstance(raw, dict):
                return
            self._raw = {
                rel: entry
                for rel, entry in raw.items()
                if isinstance(entry, list) and len(entry) == 7
            }
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            self._raw = {}
            return
        _loaded[str(path)] = (signature, dict(self._raw))

    @property
    def entries(self) -> dict[str, CacheEntry]:
        """Every entry, parsed (malformed ones are left out)."""
        parsed: dict[str, CacheEntry] = {}
        for rel, raw in self._raw.items():
            try:
                parsed[rel] = CacheEntry.from_json(raw)
            except (TypeError, ValueError):
                continue
        return parsed

    def lookup(self, rel: str, identity: StatIdentity) -> CacheEntry | None:
        """The entry of ``rel`` if it can be trusted for a file with ``identity``."""
        hit = self.trusted(rel, identity)
        if hit is None:
            return None
        digest, imports = hit
        recorded_ns = self._raw[rel][4]
        return CacheEntry(
            identity, recorded_ns, digest, None if imports is None else tuple(imports)
        )

    def trusted(self, rel: str, identity: StatIdentity) -> tuple[str, list[str] | None] | None:
        """:meth:`lookup` without building an entry: (digest, imports) or None.

        The warm-key hot path: it runs once per input file.
        """
        raw = self._raw.get(rel)
        # Field by field: no temporary list or tuple per file.
        if (
            raw is None
            or raw[0] != identity[0]
            or raw[1] != identity[1]
            or raw[2] != identity[2]
            or raw[3] != identity[3]
        ):
            self.misses += 1
            return None
        recorded_ns, digest = raw[4], raw[5]
        if not (isinstance(recorded_ns, int) and isinstance(digest, str)):
            self.misses += 1
            return None
        if max(identity[1], identity[3]) >= recorded_ns - RACY_WINDOW_NS:
            self.racy += 1
            return None
        self.hits += 1
        return digest, raw[6]

    def record(self, rel: str, entry: CacheEntry) -> None:
        """Remember (or replace) the entry of ``rel``."""
        raw = entry.to_json()
        if self._raw.get(rel) != raw:
            self._raw[rel] = raw
            self.dirty = True

    def retain(self, live: set[str]) -> None:
        """Forget the entries of files that are no longer inputs."""
        stale = self._raw.keys() - live
        for rel in stale:
            del self._raw[rel]
        self.dirty = self.dirty or bool(stale)

    def save(self) -> None:
        """Write the cache atomically if it changed; errors leave no cache, not a crash."""
        if self.path is None or not self.dirty:
            return
        data = {
            "format": _FORMAT,
            "entries": dict(sorted(self._raw.items())),
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".statcache-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(json.dumps(data, separators=(",", ":")).encode())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            st = self.path.stat()
        except OSError:
            return
        _loaded[str(self.path)] = ((st.st_mtime_ns, st.st_size, st.st_ino), dict(self._raw))
        self.dirty = False
