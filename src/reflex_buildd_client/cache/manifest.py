"""The manifest format: what an artifact holds and how it was made (pure).

Written last into an artifact (its completion marker) and read first; where it
lives is :mod:`.store`'s business. Every file with its blake3 digest, size,
content type and sentinel count; the key's inputs (so two keys can be
explained); build facts; the route table.

Manifests are read from whoever could write the cache or the bucket:
:meth:`Manifest.from_bytes` parses within a size and a depth limit
(:mod:`.boundedjson`) and :meth:`Manifest.from_json` checks the type of every
field and every file name, so a hostile manifest is one
:class:`~reflex_buildd_client.errors.CorruptArtifactError`, never a
``RecursionError``, an ``AttributeError`` or a ``NaN`` that breaks a reader later.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import CorruptArtifactError
from ..keys.schema import KeyInputs
from .boundedjson import load_bounded

__all__ = [
    "MANIFEST_FORMAT",
    "MAX_MANIFEST_BYTES",
    "MAX_MANIFEST_DEPTH",
    "MAX_NAME_BYTES",
    "FileEntry",
    "Manifest",
    "check_file_names",
    "load_manifest_json",
]

MANIFEST_FORMAT = 1
# Limits on manifests read from the cache or the bucket (boundedjson.py). A
# real one is a few KB per hundred files and 3 levels deep (4 in a remote
# envelope): these leave room for apps of ~100,000 files and bound the cost
# of a hostile one (parsing 16 MiB takes well under a second).
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_MANIFEST_DEPTH = 16
# Linux's NAME_MAX (one path component); a whole name stays far below PATH_MAX
# so that the cache root plus the artifact's directory still fit in front of it.
_NAME_MAX = 255
MAX_NAME_BYTES = 1024
# Created times a clock can give: 1970 to the year 9999 (time.localtime's range).
_EPOCH_MIN, _EPOCH_MAX = 0.0, 253402300799.0


@dataclass(frozen=True)
class FileEntry:
    """One file of an artifact as the manifest records it."""

    digest: str
    size: int
    content_type: str
    sentinels: int = 0


@dataclass(frozen=True)
class Manifest:
    """What an artifact holds and how it was made (written last, read first)."""

    key: str
    created: float
    project: dict[str, str]
    inputs: KeyInputs
    build: dict[str, Any]
    files: dict[str, FileEntry]
    routes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The manifest as stored in ``manifest.json``."""
        return {
            "format": MANIFEST_FORMAT,
            "key": self.key,
            "created": self.created,
            "project": self.project,
            "inputs": self.inputs.to_json(),
            "build": self.build,
            "routes": self.routes,
            "files": {
                path: {
                    "digest": e.digest,
                    "size": e.size,
                    "type": e.content_type,
                    "sentinels": e.sentinels,
                }
                for path, e in sorted(self.files.items())
            },
        }

    @classmethod
    def from_json(cls, data: Any) -> Manifest:
        """Parse a stored manifest, checking the type of every field it reads.

        Raises:
            CorruptArtifactError: If the data is not a manifest this version
                reads, or names files no artifact directory can hold.
        """
        try:
            obj = _mapping(data, "the manifest")
            if obj.get("format") != MANIFEST_FORMAT:
                raise CorruptArtifactError(f"unknown manifest format {obj.get('format')!r}")
            created = _time(obj["created"])
            routes = obj.get("routes", [])
            if not isinstance(routes, list):
                raise TypeError("routes is not a list")
            files = {
                _string(path, "a file name"): _entry(e, path)
                for path, e in _mapping(obj["files"], "files").items()
            }
            check_file_names(files)
            manifest = cls(
                key=_string(obj["key"], "key"),
                created=created,
                project={
                    _string(k, "project"): _string(v, "project")
                    for k, v in _mapping(obj["project"], "project").items()
                },
                inputs=KeyInputs.from_json(_mapping(obj["inputs"], "inputs")),
                build=_facts(obj["build"]),
                routes=[_string(r, "a route") for r in routes],
                files=files,
            )
        except CorruptArtifactError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptArtifactError(f"malformed manifest: {_why(exc)}") from exc
        return manifest

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        """Parse manifest bytes within :data:`MAX_MANIFEST_BYTES` and :data:`MAX_MANIFEST_DEPTH`.

        The one way a manifest's bytes are read, local or remote (a remote
        envelope goes through :func:`load_manifest_json` first).

        Raises:
            CorruptArtifactError: Too large, too deep, not JSON, or malformed.
        """
        try:
            data_json = load_manifest_json(data)
        except CorruptArtifactError as exc:
            raise CorruptArtifactError(f"unreadable manifest: {exc}") from None
        return cls.from_json(data_json)


def load_manifest_json(data: bytes) -> Any:
    """The JSON value of manifest bytes, parsed within the manifest limits.

    Raises:
        CorruptArtifactError: Too large, nested too deep, ``NaN``, or not
            JSON; the message is the reason alone (callers say what was read).
    """
    try:
        return load_bounded(data, max_bytes=MAX_MANIFEST_BYTES, max_depth=MAX_MANIFEST_DEPTH)
    except ValueError as exc:
        raise CorruptArtifactError(str(exc)) from None


def check_file_names(files: Mapping[str, object]) -> None:
    """Refuse file names that no directory on this machine can hold as one artifact.

    A name with an empty, ``.`` or ``..`` part, a component longer than
    ``NAME_MAX`` bytes, a whole longer than :data:`MAX_NAME_BYTES`, text that
    has no bytes on this filesystem (a lone surrogate), or a file that is also
    another file's directory (``public/a`` and ``public/a/b``). Such a
    manifest was never written by a build: it is a bad artifact, not a fault
    of the disk that would fail to hold it.

    Raises:
        CorruptArtifactError: Naming the first such file.
    """
    dirs: set[str] = set()
    for rel in files:
        problem = _name_problem(rel)
        if problem:
            raise CorruptArtifactError(f"manifest names a file {problem}: {rel[:120]!r}")
        parts = rel.split("/")
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
    if clash := sorted(dirs.intersection(files)):
        raise CorruptArtifactError(
            f"manifest names {clash[0][:120]!r} both as a file and as a directory of files"
        )


def _name_problem(rel: str) -> str:
    try:
        raw = os.fsencode(rel)
    except UnicodeError:
        return "with characters no file name can hold"
    if b"\0" in raw or b"\\" in raw or raw.startswith(b"/"):
        return "outside the artifact (a NUL, a backslash or a leading slash)"
    if len(raw) > MAX_NAME_BYTES:
        return f"longer than {MAX_NAME_BYTES} bytes"
    parts = raw.split(b"/")
    if any(part in (b"", b".", b"..") for part in parts):
        return "outside the artifact (an empty, '.' or '..' part)"
    if any(len(part) > _NAME_MAX for part in parts):
        return f"with a part longer than {_NAME_MAX} bytes (NAME_MAX)"
    return ""


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"{what} is a {type(value).__name__}, not an object")
    return value


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} is a {type(value).__name__}, not a string")
    return value


def _time(value: Any) -> float:
    # A number a clock gives: not a bool, not a string, not NaN or infinite.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"created {value!r} is not a number")
    if not _EPOCH_MIN <= value <= _EPOCH_MAX:  # also refuses NaN
        raise ValueError(f"created {value!r} is not a time")
    return float(value)


def _facts(value: Any) -> dict[str, Any]:
    # Build facts are flat (versions, the runtime, seconds): what readers print.
    facts = _mapping(value, "build")
    for name, fact in facts.items():
        if not isinstance(fact, (str, int, float, type(None))):
            raise TypeError(f"build fact {name!r} is a {type(fact).__name__}")
    return dict(facts)


def _count(value: Any, what: str) -> int:
    # bool is an int to Python, never to a manifest.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} {value!r} is not a count")
    return value


def _entry(value: Any, rel: Any) -> FileEntry:
    e = _mapping(value, f"the entry of {rel!r}")
    return FileEntry(
        digest=_string(e["digest"], "digest"),
        size=_count(e["size"], "size"),
        content_type=_string(e["type"], "type"),
        sentinels=_count(e.get("sentinels", 0), "sentinels"),
    )


def _why(exc: BaseException) -> str:
    # A missing field reads better as its name than as KeyError('x').
    return f"no {exc.args[0]!r} field" if isinstance(exc, KeyError) else str(exc)
